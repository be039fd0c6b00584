"Spending tickets end to end: the README main job, the `spend` job (several seeds, resume after a real kill) and its bad input."
import json, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import load_file

from lottery_fastai.draw import Ticket
from lottery_fastai.spend import RECIPES

ROOT = Path(__file__).parents[1]
CLI = str(Path(sys.executable).parent/'lottery_fastai')
TINY = ['--arch', 'resnet8', '--width', '4', '--rounds', '2', '--rate', '0.5', '--epochs', '1', '--lr', '1e-2', '--n', '640', '--bs', '64', '--controls', '']

def run(*args, **kw): return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=900, **kw)

def spent_weights(spend_dir, recipe, rnd, seed): return load_file(str(spend_dir/'models'/f'{recipe}_round_{rnd:02d}_seed_{seed}.safetensors'))

def check_main_job(run_dir, stdout, floor):
    "What the README's main job leaves in its folder and prints, whatever its size; `floor`: each spend's lowest accuracy"
    spend_dir = run_dir/'spend'
    draw = pd.read_csv(run_dir/'history.csv')
    assert list(draw['round']) == list(range(6)) and draw.sparsity.iloc[-1] > 0.9   # 5 rounds of 40%: 7.8% of the weights left
    h = pd.read_csv(spend_dir/'history.csv')
    assert sorted(zip(h.recipe, h['round'])) == sorted((rc, r_) for rc in ('vanilla', 'AT+TRT') for r_ in range(1, 6))
    van = h[h.recipe == 'vanilla'].sort_values('round')
    assert (van.test_acc.values == draw.test_acc.values[1:]).all()              # vanilla spending repeats the draw, to the last digit
    tickets = [Ticket.load(run_dir/'tickets'/f'round_{r_:02d}.safetensors') for r_ in range(6)]
    for row in h.itertuples():
        w = spent_weights(spend_dir, row.recipe, row.round, 0)
        for k,m in tickets[row.round].masks.items(): assert w[k][~m].abs().max() == 0, (row.recipe, k)   # the drawn mask, exactly
        assert any('jump' in k for k in w) == (row.recipe == 'AT+TRT')           # the injected skips are saved with the spent model
    assert (h.test_acc > floor).all(), h                                           # both recipes learn the digits at every sparsity (chance: 0.1)
    assert set(h[h.recipe == 'AT+TRT'].gradinit_iters) == {1} and set(van.gradinit_iters) == {0}   # 3% of the steps buys one iteration
    acts = pd.read_csv(spend_dir/'act_zeros.csv')
    assert acts[acts.recipe == 'AT+TRT'].zeros.max() < 0.004                     # Swish: under 0.4% exact zeros (Table A1)
    assert acts[acts.recipe == 'vanilla'].zeros.min() > 0.1                       # ReLU: many
    assert 'test accuracy (%) of the spent tickets' in stdout and 'AT+TRT' in stdout and 'GradInit' in stdout
    assert (spend_dir/'accuracy_vs_sparsity.png').stat().st_size > 10_000

@pytest.mark.slow
def test_readme_main_job(tmp_path):
    "The README's first command as a user runs it, at its own size (about 7 minutes on one thread: `LOTTERY_SLOW=1`)"
    r = subprocess.run(['bash', str(ROOT/'scripts'/'main.sh'), '--path', str(tmp_path/'main')], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    check_main_job(tmp_path/'main', r.stdout, floor=0.85)

def test_readme_main_job_small(tmp_path, monkeypatch):
    """The main job's every step at CI's size: the README's script answers, then the same job (`lottery_fastai main`,
    its draw, control and spends) on a smaller `MAIN`: 1,500 digits, batch 32, 3 epochs a round, the same 5 rounds"""
    import contextlib, io
    from dataclasses import replace
    from lottery_fastai import cli
    r = subprocess.run(['bash', str(ROOT/'scripts'/'main.sh'), '--help'], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and '--full' in r.stdout, r.stderr[-3000:]
    d = cli.MAIN
    monkeypatch.setattr(cli, 'MAIN', replace(d, data=replace(d.data, n=1500, bs=32), train=replace(d.train, epochs=3)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out): assert cli.main(['main', '--path', str(tmp_path/'main')]) == 0
    check_main_job(tmp_path/'main', out.getvalue(), floor=0.5)

def test_spend_job_seeds_and_resume_after_kill(tmp_path):
    "`spend` with two seeds, killed with SIGKILL after its first committed row and started again, equals an uninterrupted run"
    assert run('draw', *TINY, '--path', str(tmp_path/'draw')).returncode == 0
    for name in ('ref', 'run'): subprocess.run(['cp', '-r', str(tmp_path/'draw'), str(tmp_path/name)], check=True)
    args = ['spend', '--recipes', 'vanilla,AT+TRT', '--seeds', '0,1', '--gradinit_iters', '3']
    ref = run(*args, '--path', str(tmp_path/'ref'))
    assert ref.returncode == 0, ref.stderr
    p = subprocess.Popen([CLI, *args, '--path', str(tmp_path/'run')], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hist = tmp_path/'run'/'spend'/'history.csv'
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if hist.exists() and len(hist.read_text().splitlines()) >= 2: break   # one row committed
        time.sleep(0.02)
    assert p.poll() is None, 'the spend finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.wait()
    assert len(pd.read_csv(hist)) < 8
    res = run(*args, '--path', str(tmp_path/'run'))
    assert res.returncode == 0, res.stderr
    a, b = pd.read_csv(tmp_path/'ref'/'spend'/'history.csv'), pd.read_csv(hist)
    assert len(a) == 8 and sorted(zip(a.recipe, a['round'], a.seed)) == sorted((rc, r_, s) for rc in ('vanilla', 'AT+TRT') for r_ in (1, 2) for s in (0, 1))
    key = ['recipe', 'round', 'seed']
    cols = [c for c in a if not c.endswith('_s')]                                  # all but the wall-clock seconds
    pd.testing.assert_frame_equal(a.sort_values(key)[cols].reset_index(drop=True), b.sort_values(key)[cols].reset_index(drop=True))
    for row in a.itertuples():
        wa, wb = spent_weights(tmp_path/'ref'/'spend', row.recipe, row.round, row.seed), spent_weights(tmp_path/'run'/'spend', row.recipe, row.round, row.seed)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert '± ' in res.stdout                                                      # mean ± standard deviation over the two seeds

@pytest.mark.parametrize('args,msg', [
    (['--recipes', 'vanilla,fancy'], '--recipes must be a comma-separated subset'),
    (['--seeds', '0,one'], '--seeds must be comma-separated ints'),
    (['--seeds', '0,0'], '--seeds repeats a value'),
    (['--gradinit_iters', '0', '--recipes', 'TRT'], '--gradinit_iters must be a positive int'),
])
def test_spend_bad_input_writes_nothing(tmp_path, args, msg):
    assert run('draw', *TINY, '--rounds', '1', '--path', str(tmp_path/'draw')).returncode == 0
    r = run('spend', '--path', str(tmp_path/'draw'), *args)
    assert r.returncode != 0 and msg in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'draw'/'spend').exists()

def test_spend_needs_a_draw_and_a_fitting_model(tmp_path):
    r = run('spend', '--path', str(tmp_path/'nothing'))
    assert r.returncode == 2 and 'holds no draw' in r.stderr
    r = run('draw', '--rounds', '1', '--epochs', '1', '--n', '500', '--spend', 'AT', '--path', str(tmp_path/'lenet'))
    assert r.returncode != 0 and "recipe 'AT' injects skips, but 'lenet300' has no convolution unit" in r.stderr
    assert not (tmp_path/'lenet').exists()                                         # refused before the draw
    r = run('draw', '--rounds', '1', '--spend', 'vanila', '--path', str(tmp_path/'typo'))
    assert r.returncode == 2 and '--spend must be a comma-separated subset of' in r.stderr and str(list(RECIPES)) in r.stderr
    assert not (tmp_path/'typo').exists()
