"""Build the documentation site from the notebooks and check its links (quarto, which nbdev_docs needs, cannot be
installed here).

One HTML page per notebook, with its kept outputs (tables, plots embedded as images), a navigation bar and an index page
from `nbs/index.ipynb`; a search box over every page's titles, headings and API names (an index the site ships,
`search.js`, searched in the browser), a contents list of the page's sections under its name in the navigation, and
links to the source on GitHub (each page's notebook and module, each API section's line). A module notebook's page is
an API reference in reading order: each exported cell becomes one section per public name it defines (signature,
docstring, nbdev's docments table), with the cell's source folded below it; private helpers appear only in that folded
source; example and test code is folded above its outputs. Math is rendered by a MathJax served from the site itself
(the `jupyter-server-mathjax` package), so the pages need no network.
"""
import argparse, configparser, importlib, inspect, json, re, html, shutil
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters import markdown2html
from nbconvert.preprocessors import TagRemovePreprocessor

root = Path(__file__).resolve().parent.parent
NBS = root/'nbs'
FOLD = 'lf-fold'   # tag of a code cell whose input is shown folded in a markdown cell above it
_ini = configparser.ConfigParser(); _ini.read(root/'settings.ini')
SOURCE = f"{_ini['DEFAULT']['git_url']}/blob/{_ini['DEFAULT']['branch']}"   # the repository's files online

def pages()->list:
    "(notebook path, page name, title) for every notebook, modules in layer order, then the tutorials"
    nbs = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_') and p.stem != 'index')
    tuts = sorted(p for p in (NBS/'tutorials').glob('*.ipynb') if not p.name.startswith('_'))
    out = [(NBS/'index.ipynb', 'index', 'lottery_fastai')]
    for p in [*nbs, *tuts]:
        nb = nbformat.read(p, as_version=4)
        title = next((c.source.splitlines()[0].lstrip('# ').strip() for c in nb.cells
                      if c.cell_type == 'markdown' and c.source.startswith('# ')), p.stem)
        out.append((p, p.stem, title))
    return out

def _module(nb):
    "The module a notebook exports to (its `default_exp`), imported; None for a tutorial or the index"
    for c in nb.cells:
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', c.source, re.M) if c.cell_type == 'code' else None
        if m: return importlib.import_module(f'lottery_fastai.{m.group(1)}')
    return None

def _defined(src:str, mod)->list:
    "The public names a cell defines, in order: top-level functions, classes and constants in `mod.__all__`, and the "
    "methods it `@patch`es onto a class ('Learner.draw')"
    names, public = [], set(getattr(mod, '__all__', []))
    for m in re.finditer(r'^(@patch\n(?:@.*\n)*)?(?:def|class)\s+(\w+)\s*(?:\(\s*self\s*:\s*(\w+))?'
                         r'|^(\w+(?:\s*,\s*\w+)*)\s*(?::[^=\n]*)?=(?!=)', src, re.M):
        patched, name, cls, consts = m.groups()
        if patched and cls and not name.startswith('_'): names.append(f'{cls}.{name}')
        elif name in public: names.append(name)
        else: names += [c for c in re.split(r'\s*,\s*', consts or '') if c in public]
    return list(dict.fromkeys(names))

def _obj(mod, name):
    if '.' not in name: return getattr(mod, name)
    cls, meth = name.split('.')
    return getattr(getattr(mod, cls, None) or vars(importlib.import_module('fastai.learner'))[cls], meth)

def _signature(name:str, obj)->str:
    "`name(arg, arg=default, ...)`, wrapped one argument a line when long"
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return name
    short = lambda t: re.sub(r'\b(?:[a-z_]\w*\.)+([A-Z]\w*)', r'\1', t)   # torch.nn.modules.module.Module: Module
    params = [short(str(p)) for p in sig.parameters.values() if not (inspect.isclass(obj) and p.name == 'self')]
    if name.count('.') and params and params[0].startswith('self'): params = params[1:]
    ret = sig.return_annotation
    ret = '' if ret is inspect.Signature.empty else ' -> ' + short(inspect.formatannotation(ret))
    one = f"{name}({', '.join(params)}){ret}"
    return one if len(one) <= 100 else f"{name}(\n" + ''.join(f'    {p},\n' for p in params) + f"){ret}"

def _table(obj)->str:
    "nbdev's docments table (argument, type, default, details) of a callable, as markdown; '' when it takes nothing"
    from nbdev.showdoc import DocmentTbl
    try: t = DocmentTbl(obj)
    except Exception: return ''
    return t._repr_markdown_() if getattr(t, 'has_docment', True) and t.params else ''

def _api(mod, name:str)->str:
    "One section of the reference: heading, signature, docstring, docments table (and the public methods of a class)"
    obj = _obj(mod, name)
    anchor = name.replace('.', '-')
    head = (f'<div class="lf-api" id="{anchor}"><h3><code>{name}</code> <a class="lf-srclink" '
            f'href="{source_url(mod, name, obj)}">source</a></h3>\n')
    if not callable(obj):   # a constant: its value, shortened
        val = html.escape(repr(obj if not isinstance(obj, dict) else list(obj)))
        return head + f'<pre class="lf-sig">{name} = {val[:300]}{"…" if len(val) > 300 else ""}</pre></div>\n'
    out = [head,
           f'<pre class="lf-sig">{html.escape(_signature(name, obj))}</pre>\n',
           markdown2html(inspect.getdoc(obj) or ''), markdown2html(_table(obj))]
    if inspect.isclass(obj):
        for mn, m in vars(obj).items():
            if mn.startswith('_') or not callable(m) or not getattr(m, '__doc__', None): continue
            out += [f'<p class="lf-method"><code>{html.escape(_signature(f"{name}.{mn}", m))}</code></p>\n',
                    markdown2html(inspect.getdoc(m)), markdown2html(_table(m))]
    return ''.join(out) + '</div>\n'

def source_url(mod, name:str, obj)->str:
    "The line of the module's file on GitHub where `name` is defined (the file itself where no line is found)"
    f = Path(mod.__file__)
    line = None
    try:
        if callable(obj) and Path(inspect.getsourcefile(obj)).resolve() == f.resolve():
            line = inspect.getsourcelines(obj)[1]
    except (TypeError, OSError): pass
    if line is None:   # a constant, or an object made elsewhere: the line that assigns or defines the name
        last = name.split('.')[-1]
        line = next((i for i,l in enumerate(f.read_text().splitlines(), 1)
                     if re.match(rf'(?:def|class)\s+{last}\b|{last}\s*(?::[^=]*)?=(?!=)', l)), None)
    return f"{SOURCE}/{f.relative_to(root).as_posix()}" + (f'#L{line}' if line else '')

def _fold(src:str, label:str)->str:
    return f'<details class="lf-src"><summary>{label}</summary>\n\n```python\n{src}\n```\n\n</details>\n'

def _clean(nb):
    """Drop what is for the notebook machinery (hidden cells, `#|` directives, `default_exp` cells); on a module's page
    turn each exported cell into its API sections and fold example and test code above its outputs"""
    mod, keep, names = _module(nb), [], []
    for c in nb.cells:
        if c.cell_type == 'code':
            if re.search(r'^#\|\s*hide', c.source, re.M) or re.search(r'^#\|\s*default_exp', c.source, re.M): continue
            export = re.search(r'^#\|\s*export', c.source, re.M)
            c.source = re.sub(r'^#\|.*\n?', '', c.source, flags=re.M).strip('\n')
            if mod is not None and export:
                defined = _defined(c.source, mod)
                names += defined
                api = ''.join(_api(mod, n) for n in defined)
                label = 'source' if defined else 'source (imports and private helpers)'
                keep.append(nbformat.v4.new_markdown_cell(api + _fold(c.source, label)))
                continue
            if mod is not None and c.source:
                keep.append(nbformat.v4.new_markdown_cell(_fold(c.source, 'example and test code')))
                if not c.get('outputs'): continue
                c.metadata.setdefault('tags', []).append(FOLD)
        keep.append(c)
    if names:   # the page's table of contents, under its title
        toc = ' · '.join(f'<a href="#{n.replace(".", "-")}"><code>{n}</code></a>' for n in names)
        at = 1 if keep and keep[0].cell_type == 'markdown' else 0
        keep.insert(at, nbformat.v4.new_markdown_cell(f'<p class="lf-toc"><b>API:</b> {toc}</p>'))
    nb.cells = keep
    return nb

def _percent_col(name:str)->bool:
    return bool(re.search(r'acc|sparsity|share|error|density|frac|pct', name, re.I))

def _format_tables(body:str)->str:
    """Numbers in the kept tables as a reader wants them: a fraction in an accuracy, sparsity or share column as a
    percentage, any other float with at most 4 decimals (pandas prints 6)"""
    def table(m):
        t = m.group(0)
        heads = re.findall(r'<thead>(.*?)</thead>', t, re.S)
        rows = re.findall(r'<tr[^>]*>(.*?)</tr>', heads[0], re.S) if heads else []
        # column names for single-level headers only
        cols = re.findall(r'<th[^>]*>(.*?)</th>', rows[0], re.S) if len(rows) == 1 else None
        def row(r):
            cells = re.findall(r'<t[hd][^>]*>.*?</t[hd]>', r.group(0), re.S)
            out = []
            for i, cell in enumerate(cells):
                v = re.fullmatch(r'(<td[^>]*>)\s*(-?\d+\.\d{5,})\s*(</td>)', cell, re.S)
                if v:
                    x = float(v.group(2))
                    pct = cols is not None and i < len(cols) and _percent_col(cols[i]) and 0 <= x <= 1
                    num = f'{100*x:.1f}%' if pct else f'{x:.4g}' if abs(x) >= 1e4 else f'{x:.4f}'.rstrip('0').rstrip('.')
                    cell = v.group(1) + num + v.group(3)
                out.append(cell)
            return '<tr>' + ''.join(out) + '</tr>'
        rows_of = lambda b: re.sub(r'<tr[^>]*>.*?</tr>', row, b.group(0), flags=re.S)
        return re.sub(r'(?<=<tbody>).*?(?=</tbody>)', rows_of, t, flags=re.S)
    # pandas writes `<table border="1" class="dataframe">`
    return re.sub(r'<table\b[^>]*\bclass="dataframe"[^>]*>.*?</table>', table, body, flags=re.S)

def _links(text:str)->str:
    "Links between notebooks (`nbs/x.ipynb`, `x.ipynb`, `tutorials/x.ipynb`) become links between pages"
    return re.sub(r'href="(?:\.\./)?(?:nbs/)?(?:tutorials/)?([\w.+-]+)\.ipynb(#[^"]*)?"',
                  lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', text)

STYLE = ('<style>#lf-nav{position:fixed;top:0;left:0;width:230px;height:100%;overflow:auto;background:#f6f8fa;'
         'border-right:1px solid #ddd;font:14px sans-serif;padding:8px}#lf-nav li{list-style:none;margin:4px 0}'
         '#lf-nav ul{padding-left:4px}#lf-nav .here a{font-weight:bold}body{margin-left:250px!important}'
         '#lf-pn{display:flex;justify-content:space-between;font:14px sans-serif;margin:24px 16px}'
         # shell and code blocks in prose: a box that wraps rather than clips
         '.jp-RenderedMarkdown pre,.jp-RenderedHTMLCommon pre{background:#f6f8fa;border:1px solid #ddd;'
         'border-radius:4px;padding:8px 10px;white-space:pre-wrap;word-break:break-word;margin:8px 0 14px}'
         '.jp-OutputArea-output pre{white-space:pre-wrap;word-break:break-word}'
         '.lf-api{border-left:3px solid #4a7bb7;padding:2px 0 2px 12px;margin:18px 0}.lf-api h3{margin:4px 0}'
         '.lf-sig{background:#eef3fa!important;font-weight:500}.lf-method{margin:12px 0 2px}'
         'details.lf-src{margin:6px 0}details.lf-src summary{cursor:pointer;color:#555;font:13px sans-serif}'
         '.lf-toc{font-size:13px;line-height:1.8}.lf-srclink{font:12px sans-serif;font-weight:normal;margin-left:8px}'
         '#lf-q{width:95%;margin:8px 0 2px;padding:3px}#lf-hits{font-size:13px}'
         '.lf-contents{font-size:12px;border-left:2px solid #ccc;margin:2px 0 6px 4px}</style>')

def sections(body:str)->list:
    "[(anchor, heading)] of a page's sections in order: its h2 and h3 headings and its API sections"
    out = []
    for m in re.finditer(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>|<div class="lf-api" id="([^"]+)">', body, re.S):
        if m.group(4): out.append((m.group(4), m.group(4).replace('-', '.')))
        else: out.append((m.group(2), html.unescape(re.sub(r'<[^>]+>|¶', '', m.group(3))).strip()))
    return out

SEARCH = ('''<script src="search.js"></script><script>
function lfSearch(q){const out=document.getElementById('lf-hits');out.innerHTML='';
const ws=q.toLowerCase().split(/\\s+/).filter(w=>w);if(!ws.length)return;let n=0;
for(const e of LF_INDEX){const t=(e.t+' '+e.h+' '+e.x).toLowerCase();
if(ws.every(w=>t.includes(w))){const li=document.createElement('li');const a=document.createElement('a');
a.href=e.p+'.html'+(e.a?'#'+e.a:'');a.textContent=e.h?e.h+' ('+e.t+')':e.t;li.appendChild(a);out.appendChild(li);
if(++n>=25)break;}}if(!n)out.innerHTML='<li>no match</li>';}</script>''')

def _nav(all_pages, i, contents=())->tuple:
    here = ''.join(f'<li><a href="#{a}">{html.escape(h)}</a></li>' for a,h in contents)
    items = ''.join(f'<li{" class=here" if j == i else ""}><a href="{name}.html">{html.escape(title)}</a>'
                    + (f'<ul class="lf-contents">{here}</ul>' if j == i and here else '') + '</li>'
                    for j,(_,name,title) in enumerate(all_pages))
    prev = f'<a href="{all_pages[i-1][1]}.html">&larr; {html.escape(all_pages[i-1][2])}</a>' if i > 0 else ''
    nxt = (f'<a href="{all_pages[i+1][1]}.html">{html.escape(all_pages[i+1][2])} &rarr;</a>'
           if i + 1 < len(all_pages) else '')
    box = ('<input id="lf-q" type="search" placeholder="Search the docs" oninput="lfSearch(this.value)">'
           '<ul id="lf-hits"></ul>')
    return (f'<nav id="lf-nav"><b><a href="index.html">lottery_fastai</a></b>{box}<ul>{items}</ul></nav>{SEARCH}',
            f'<div id="lf-pn">{prev}<span></span>{nxt}</div>')

# the package ships MathJax's STIX web fonts only (as Jupyter's own pages configure it), not the default TeX fonts
FONTS = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], imageFont: null, '
         'preferredFont: null, webFont: "STIX-Web"}, SVG: {font: "STIX-Web"}});</script>\n')

def mathjax(out:Path)->str:
    "Copy the MathJax of the `jupyter-server-mathjax` package into the site; the URL the pages load it from"
    import jupyter_server_mathjax
    src = Path(jupyter_server_mathjax.__file__).parent/'static'
    if not (out/'mathjax'/'MathJax.js').exists(): shutil.copytree(src, out/'mathjax', dirs_exist_ok=True)
    return 'mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe'   # the configuration that package ships

def build(out:Path)->list:
    "Write every page into `out`; the list of pages written"
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name='lab', mathjax_url=mathjax(out))
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={FOLD}), enabled=True)
    all_pages, index = pages(), []
    for i,(p,name,title) in enumerate(all_pages):
        nb = nbformat.read(p, as_version=4)
        mod = _module(nb)
        body,_ = exporter.from_notebook_node(_clean(nb))
        contents = sections(body)
        nav, pn = _nav(all_pages, i, contents)
        src = (f'<p class="lf-srclink">Source: <a href="{SOURCE}/{p.relative_to(root).as_posix()}">the notebook</a>'
               + (f', <a href="{SOURCE}/{Path(mod.__file__).relative_to(root).as_posix()}">the module</a>'
                  if mod else '')
               + '</p>')
        about = next((l[2:] for c in nb.cells if c.cell_type == 'markdown' for l in c.source.splitlines()
                      if l.startswith('> ')), '')   # the page's one-line summary, searched with its title
        index += [dict(p=name, t=title, a='', h='', x=about),
                  *(dict(p=name, t=title, a=a, h=h, x='') for a,h in contents)]
        # require.js (for widgets) and mermaid come from a CDN in nbconvert's template; no page here uses either
        body = re.sub(r'<script src="https?://[^"]*require[^"]*"></script>\s*', '', body)
        body = re.sub(r'<script type="module">(?:(?!</script>).)*mermaid(?:(?!</script>).)*</script>\s*', '', body,
                      flags=re.S)
        body = _format_tables(_links(body)).replace('</head>', STYLE + '</head>', 1)
        body = body.replace('<!-- Load mathjax -->', FONTS, 1)
        body = re.sub(r'<title>.*?</title>', f'<title>{html.escape(title)}</title>', body, count=1, flags=re.S)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)
        body = body.replace('</body>', src + pn + '</body>', 1)
        (out/f'{name}.html').write_text(body)
    (out/'search.js').write_text('const LF_INDEX = ' + json.dumps(index, ensure_ascii=False) + ';\n')
    return [out/f'{n}.html' for _,n,_ in all_pages]

def missing_api()->list:
    "Public names (a module's `__all__`) that no exported cell of its notebook defines: its page has no section for them"
    bad = []
    for p,_,_ in pages():
        nb = nbformat.read(p, as_version=4)
        mod = _module(nb)
        if mod is None or mod.__name__.endswith('.all'): continue   # `all` re-exports the other modules
        found = [n for c in nb.cells if c.cell_type == 'code' and re.search(r'^#\|\s*export', c.source, re.M)
                 for n in _defined(re.sub(r'^#\|.*\n?', '', c.source, flags=re.M), mod)]
        bad += [f'{p.name}: {n}' for n in mod.__all__ if n not in found]
    return bad

def broken_links(out:Path)->list:
    "Every relative `href`/`src` in the pages of `out` that does not resolve to a file; every script from the network"
    bad = []
    for page in sorted(out.glob('*.html')):
        text = page.read_text()
        for link in re.findall(r'(?:href|src)="([^"]+)"', text):
            if re.match(r'^(https?:|mailto:|data:|#|javascript:)', link): continue
            target = (page.parent/link.split('#')[0].split('?')[0]).resolve()
            if not target.exists(): bad.append(f'{page.name}: {link}')
        scripts = re.findall(r'<script[^>]+src="(https?:[^"]+)"', text) + [u for code in re.findall(
            r'<script[^>]*>(.*?)</script>', text, re.S) for u in re.findall(r'import\(?\s*["\'](https?:[^"\']+)', code)]
        bad += [f'{page.name}: script from the network {s}' for s in scripts]
    return bad

def main(argv=None):
    ap = argparse.ArgumentParser(prog='python scripts/docs.py', description='Build the documentation pages (one HTML '
                                 'page per notebook, API reference for the modules, math served locally) and check links.')
    ap.add_argument('out', nargs='?', default=str(root/'_docs'), help='folder to write the site into (default: _docs/)')
    ap.add_argument('--check', action='store_true', help='then check that every link and script resolves to a file of '
                    'the site and that every public name has its API section; exit 1 naming what fails')
    args = ap.parse_args(argv)   # an unknown flag is refused: exit 2, before anything is written
    out = Path(args.out)
    written = build(out)
    print(f'{len(written)} pages in {out}')
    if args.check:
        bad, undocumented = broken_links(out), missing_api()
        n_img = sum(p.read_text().count('<img') for p in written)
        print(f'{n_img} images embedded; {len(bad)} broken link(s); '
              f'{len(undocumented)} public name(s) without a section')
        for b in bad: print('  broken:', b)
        for u in undocumented: print('  no API section:', u)
        raise SystemExit(1 if bad or undocumented else 0)

if __name__ == '__main__': main()
