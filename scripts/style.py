"""The house rules that a reader notices first, checked on the generated library: lines under 120 characters, no statements
chained with `;` (but fastai-style one-line definitions: `def f(x): "doc"; return x`), function bodies under 45 lines
(a docments signature, one line per argument with its comment, is not counted).
A public function with more than 8 named parameters is an offence (House II's rule: more goes in a typed description
or a `**kwargs` handed on with `@delegates`). `WIDE` held the 20 written before the rule; it is empty since the second
stop of 2026-12-07, and an exception added to it must say why beside it. `--params` lists the wide ones.
Exit 1 naming every offence. The notebooks are the source: fix them there, then `nbdev_export`."""
import ast, io, sys, tokenize
from pathlib import Path

root = Path(__file__).resolve().parent.parent
MAX_LINE, MAX_FUNC, MAX_PARAMS = 120, 45, 8
# module.function -> its named parameters: the exceptions (none; 20 on 2026-12-07, when the rule came, issue 31)
WIDE = {}

def _generated(lines:list)->set:
    "Line numbers nbdev writes itself: the module docstring (the notebook's description) and the `__all__` list"
    out, in_all = {1}, False
    for i,l in enumerate(lines, 1):
        if l.startswith('__all__ = ['): in_all = True
        if in_all: out.add(i)
        if in_all and l.rstrip().endswith(']'): in_all = False
    return out

def offences(path:Path)->list:
    src = path.read_text()
    gen = _generated(src.splitlines())
    lines = src.splitlines()
    out = [f'{path.name}:{i}: {len(l)} characters' for i,l in enumerate(lines, 1) if len(l) > MAX_LINE and i not in gen]
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.OP and tok.string == ';':
            line = lines[tok.start[0]-1].lstrip()
            if not line.startswith(('def ', '@', 'class ')): out.append(f'{path.name}:{tok.start[0]}: statements chained with ;')
    for o,(name,n) in many_params(path):
        if n > WIDE.get(f'{path.stem}.{name}', MAX_PARAMS): out.append(o + f" (allowed: {WIDE.get(f'{path.stem}.{name}', MAX_PARAMS)})")
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)): continue
        body = node.end_lineno - node.body[0].lineno + 1
        if body > MAX_FUNC: out.append(f'{path.name}:{node.lineno}: function {node.name} has a body of {body} lines')
    return out

def many_params(path:Path)->list:
    "Public functions and methods of `path` with more than `MAX_PARAMS` named parameters (`self`, `*args`, `**kw` aside)"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith('_'): continue
        a = node.args
        n = len([x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ('self', 'cls')])
        if n > MAX_PARAMS: out.append((f'{path.name}:{node.lineno}: {node.name} has {n} named parameters', (node.name, n)))
    return out

if __name__ == '__main__':
    if '--params' in sys.argv:
        many = [o for p in sorted((root/'lottery_fastai').glob('*.py')) if p.name != '_modidx.py' for o,_ in many_params(p)]
        for o in many: print(o)
        print(f'{len(many)} public function(s) with more than {MAX_PARAMS} named parameters')
    bad = [o for p in sorted((root/'lottery_fastai').glob('*.py')) if p.name != '_modidx.py' for o in offences(p)]
    for o in bad: print(o)
    print(f'{len(bad)} style offence(s)')
    sys.exit(1 if bad and '--report' not in sys.argv else 0)
