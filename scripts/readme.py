"Write README.md from nbs/index.ipynb (quarto, which nbdev_readme needs, cannot be installed here); --check only compares."
import sys, re
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

root = Path(__file__).resolve().parent.parent

def render() -> str:
    nb = nbformat.read(root/'nbs'/'index.ipynb', as_version=4)
    # nbdev directives (`#| ...`) and hidden cells are for the notebook machinery, not for readers
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and re.search(r'^#\|\s*(hide|export)', c.source, re.M))]
    for c in nb.cells:
        if c.cell_type == 'code': c.source = re.sub(r'^#\|.*\n?', '', c.source, flags=re.M)
    body, _ = MarkdownExporter(exclude_output=True).from_notebook_node(nb)
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    return '<!-- Generated from nbs/index.ipynb by scripts/readme.py: edit the notebook, not this file. -->\n\n' + body

if __name__ == '__main__':
    text, dest = render(), root/'README.md'
    if '--check' in sys.argv: sys.exit(0 if dest.exists() and dest.read_text() == text else 1)
    dest.write_text(text)
