"""The README's shell block, run in order as written on a fresh folder, with small sizes: each command must succeed.
The commands run through `lottery_fastai.cli.main` in this process, as the console script calls it after its checks
(`tests/test_installed.py` drives every job through the installed command itself): one import of torch, not eleven."""
import contextlib, io, re, shlex
from pathlib import Path
from lottery_fastai.cli import main

ROOT = Path(__file__).resolve().parent.parent

def readme_block()->list:
    "The commands of the README's shell block of jobs (the one that starts with `lottery_fastai draw`), comments cut"
    blocks = re.findall(r'```sh\n(.*?)```', (ROOT/'README.md').read_text(), re.S)
    block = next(b for b in blocks if b.startswith('lottery_fastai draw'))
    return [shlex.split(line, comments=True) for line in block.strip().splitlines()]

def small(args:list)->list:
    """The same command at a size CI can afford: 960 digits and 4 epochs a round (so that 5% of training is one
    iteration), one spending seed, the last round alone moved by elastic, the quick figure scale at two seeds, short benchmarks"""
    args, job = list(args), args[1]
    def put(opt, val):
        if opt in args: args[args.index(opt) + 1] = val
        else: args.extend([opt, val])
    if job == 'draw': put('--epochs', '4'); put('--n', '960')   # a later job on its folder reads these from it
    if job == 'train': put('--epochs', '1')
    if job == 'spend': put('--seeds', '0')
    if job == 'elastic': put('--rounds', '1')
    if job == 'sparse': put('--epochs', '1'); put('--n', '960')
    if job == 'figure': args.append('--quick'); put('--seeds', '0,1')   # one seed for each of the two workers
    if job == 'bench': put('--reps', '1'); put('--archs', 'lenet300')
    if job == 'bench' and '--tickets' not in args: put('--steps', '4')
    return args

def test_the_readme_shell_block_runs_in_order(tmp_path, monkeypatch):
    cmds = readme_block()
    assert len(cmds) >= 8 and all(c[0] == 'lottery_fastai' for c in cmds), cmds
    # every line that trains says how long it takes at the size written
    block = re.findall(r'```sh\n(lottery_fastai draw.*?)```', (ROOT/'README.md').read_text(), re.S)[0]
    for line in block.strip().splitlines():
        assert re.search(r'(\d+ min|\d+ s\b|hour|seconds|a minute|under a minute)', line.split('#', 1)[-1]), line
    monkeypatch.chdir(tmp_path)
    for c in cmds:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(small(c)[1:])
        assert rc == 0, (' '.join(small(c)), err.getvalue()[-2000:])
    # the jobs wrote where the block says, and the elastic line found the ResNet-20 draw
    assert (tmp_path/'runs'/'draw'/'tickets').is_dir() and (tmp_path/'runs'/'channels'/'compact').is_dir()
    assert list((tmp_path/'runs'/'draw').glob('elastic_resnet32*'))
