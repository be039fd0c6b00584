"""Build the documentation site from the notebooks (quarto, which nbdev_docs needs, cannot be installed here) and check its links.

`python scripts/docs.py [OUT]` writes one HTML page per notebook into OUT (default `_docs/`), with their kept outputs (tables,
plots embedded as images), a navigation bar on every page and an index page from `nbs/index.ipynb`. `--check` then verifies that
every page and image link resolves, and exits 1 naming the broken ones.
"""
import re, sys, html
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

root = Path(__file__).resolve().parent.parent
NBS = root/'nbs'

def pages()->list:
    "(notebook path, page name, title) for every notebook, modules in layer order, then the tutorials"
    nbs = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_') and p.stem != 'index')
    tuts = sorted(p for p in (NBS/'tutorials').glob('*.ipynb') if not p.name.startswith('_'))
    out = [(NBS/'index.ipynb', 'index', 'lottery_fastai')]
    for p in [*nbs, *tuts]:
        nb = nbformat.read(p, as_version=4)
        title = next((c.source.splitlines()[0].lstrip('# ').strip() for c in nb.cells if c.cell_type == 'markdown' and c.source.startswith('# ')), p.stem)
        out.append((p, p.stem, title))
    return out

def _clean(nb):
    "Drop what is for the notebook machinery: hidden cells, `#|` directives, `default_exp` cells"
    keep = []
    for c in nb.cells:
        if c.cell_type == 'code':
            if re.search(r'^#\|\s*hide', c.source, re.M) or re.fullmatch(r'\s*#\|\s*default_exp.*', c.source.strip()): continue
            c.source = re.sub(r'^#\|.*\n?', '', c.source, flags=re.M)
        keep.append(c)
    nb.cells = keep
    return nb

def _links(text:str)->str:
    "Links between notebooks (`nbs/x.ipynb`, `x.ipynb`, `tutorials/x.ipynb`) become links between pages"
    return re.sub(r'href="(?:\.\./)?(?:nbs/)?(?:tutorials/)?([\w.+-]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', text)

def _nav(all_pages, i)->str:
    items = ''.join(f'<li{" class=here" if j == i else ""}><a href="{name}.html">{html.escape(title)}</a></li>' for j,(_,name,title) in enumerate(all_pages))
    prev = f'<a href="{all_pages[i-1][1]}.html">&larr; {html.escape(all_pages[i-1][2])}</a>' if i > 0 else ''
    nxt = f'<a href="{all_pages[i+1][1]}.html">{html.escape(all_pages[i+1][2])} &rarr;</a>' if i + 1 < len(all_pages) else ''
    style = ('<style>#lf-nav{position:fixed;top:0;left:0;width:230px;height:100%;overflow:auto;background:#f6f8fa;border-right:1px solid #ddd;'
             'font:14px sans-serif;padding:8px}#lf-nav li{list-style:none;margin:4px 0}#lf-nav ul{padding-left:4px}#lf-nav .here a{font-weight:bold}'
             'body{margin-left:250px!important}#lf-pn{display:flex;justify-content:space-between;font:14px sans-serif;margin:24px 16px}</style>')
    return style, f'<nav id="lf-nav"><b><a href="index.html">lottery_fastai</a></b><ul>{items}</ul></nav>', f'<div id="lf-pn">{prev}<span></span>{nxt}</div>'

def build(out:Path)->list:
    "Write every page into `out`; the list of pages written"
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name='lab')
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    all_pages = pages()
    for i,(p,name,title) in enumerate(all_pages):
        body,_ = exporter.from_notebook_node(_clean(nbformat.read(p, as_version=4)))
        style, nav, pn = _nav(all_pages, i)
        body = _links(body).replace('</head>', style + '</head>', 1)
        body = re.sub(r'<title>.*?</title>', f'<title>{html.escape(title)}</title>', body, count=1, flags=re.S)
        body = body.replace('<body', '<body', 1)
        body = re.sub(r'(<body[^>]*>)', r'\1' + nav, body, count=1).replace('</body>', pn + '</body>', 1)
        (out/f'{name}.html').write_text(body)
    return [out/f'{n}.html' for _,n,_ in all_pages]

def broken_links(out:Path)->list:
    "Every relative `href`/`src` in the pages of `out` that does not resolve to a file"
    bad = []
    for page in sorted(out.glob('*.html')):
        for link in re.findall(r'(?:href|src)="([^"]+)"', page.read_text()):
            if re.match(r'^(https?:|mailto:|data:|#|javascript:)', link): continue
            target = (page.parent/link.split('#')[0]).resolve()
            if not target.exists(): bad.append(f'{page.name}: {link}')
    return bad

if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    out = Path(args[0]) if args else root/'_docs'
    written = build(out)
    print(f'{len(written)} pages in {out}')
    if '--check' in sys.argv:
        bad = broken_links(out)
        n_img = sum(p.read_text().count('<img') for p in written)
        print(f'{n_img} images embedded; {len(bad)} broken link(s)')
        for b in bad: print('  broken:', b)
        sys.exit(1 if bad else 0)
