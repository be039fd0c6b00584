"The documentation pages: an API reference per module (signature, docments table), math and scripts served by the site."
import re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [sys.executable, str(ROOT/'scripts'/'docs.py')]

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    r = subprocess.run([*DOCS, str(out), '--check'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '0 broken link(s); 0 public name(s) without a section' in r.stdout
    return out

def test_a_module_page_is_an_api_reference(site):
    page = (site/'03_stats.html').read_text()
    # one section per public name, with its signature and nbdev's docments table (argument, type, default, details)
    sec = re.search(r'<div class="lf-api" id="per_seed">(.*?)</div>', page, re.S).group(1)
    assert re.search(r"per_seed\(d, seed: str = (&#x27;|')seed(&#x27;|')\) -&gt; Series", sec)
    assert re.search(r'<td>seed</td>\s*<td>str</td>\s*<td>seed</td>\s*<td>Name of the index level', sec)
    # the table of contents lists the module's public names; a private helper has no section
    from lottery_fastai import stats
    toc = re.search(r'<p class="lf-toc">(.*?)</p>', page, re.S).group(1)
    assert all(f'href="#{n}"' in toc for n in stats.__all__)
    assert 'id="_' not in page
    # the code of exported cells and of examples is folded, not in the reading order
    assert page.count('<details class="lf-src">') >= 2

def test_math_and_scripts_come_from_the_site(site):
    for page in site.glob('*.html'):
        text = page.read_text()
        assert not re.search(r'<script[^>]+src="https?:', text), page.name
        assert 'src="mathjax/MathJax.js' in text, page.name
    assert (site/'mathjax'/'MathJax.js').exists() and (site/'mathjax'/'config'/'TeX-AMS-MML_HTMLorMML-full.js').exists()

def test_tables_show_percentages_and_fixed_decimals():
    sys.path.insert(0, str(ROOT/'scripts'))
    from docs import _format_tables
    import pandas as pd
    # tables as pandas writes them into a notebook's output: a one-level index, then a two-level one
    t = pd.DataFrame({'sparsity': [0.400021], 'loss': [2.142161]}).to_html()
    assert re.sub(r'\s', '', _format_tables(t)).count('<td>40.0%</td><td>2.1422</td>') == 1
    t = pd.DataFrame({'error barrier': [0.216667]}, index=pd.MultiIndex.from_tuples([('reestimate', 'train')])).to_html()
    assert '<td>21.7%</td>' in re.sub(r'\s', '', _format_tables(t))

def test_usage_and_unknown_flags(tmp_path):
    r = subprocess.run([*DOCS, '--help'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('usage: python scripts/docs.py')
    r = subprocess.run([*DOCS, str(tmp_path/'out'), '--bogus'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and 'unrecognized arguments: --bogus' in r.stderr
    assert not (tmp_path/'out').exists() and not (tmp_path/'_docs').exists()

def test_a_module_imports_only_from_its_floor_or_lower():
    "The notebooks' first digit is the floor of the house (index.ipynb): no module imports from a higher floor"
    import re
    from pathlib import Path
    root = Path(__file__).parent.parent
    floor = {p.stem.split('_', 1)[1]: int(p.stem[:2]) for p in (root/'nbs').glob('[0-9][0-9]_*.ipynb')}
    assert len(floor) >= 20 and len(set(floor)) == len(floor)
    up = [(m, t) for m in floor for t in re.findall(r'^\s*from \.(\w+) import', (root/'lottery_fastai'/f'{m}.py').read_text(), re.M)
          if t in floor and floor[t] // 10 > floor[m] // 10]
    assert up == [], up

def test_search_contents_and_source_links(site):
    "A search box over an index the site ships, the page's sections under its name, and each API section's source line"
    import json
    from lottery_fastai import draw
    page = (site/'20_draw.html').read_text()
    assert 'id="lf-q"' in page and 'src="search.js"' in page
    index = json.loads((site/'search.js').read_text().split('=', 1)[1].strip().rstrip(';'))
    hit = [e for e in index if e['h'] == 'Learner.draw']
    assert hit and hit[0]['p'] == '20_draw' and hit[0]['a'] == 'Learner-draw'
    assert {e['p'] for e in index} >= {'index', '03_stats', 'spend_better'}    # every page is searched, tutorials too
    # the contents list: the page's own sections, in the navigation under its name
    contents = re.search(r'<li class=here>.*?<ul class="lf-contents">(.*?)</ul>', page, re.S).group(1)
    assert 'href="#DrawResult"' in contents and 'href="#Learner-draw"' in contents
    # the source: the line of draw.py where DrawResult is defined, and the page's notebook
    url = re.search(r'id="DrawResult"><h3><code>DrawResult</code> <a class="lf-srclink" href="([^"]+)"', page).group(1)
    path, line = url.split('/blob/main/')[1].split('#L')
    assert path == 'lottery_fastai/draw.py'
    assert (ROOT/path).read_text().splitlines()[int(line) - 1].startswith('class DrawResult')
    assert '/blob/main/nbs/20_draw.ipynb">the notebook</a>' in page
