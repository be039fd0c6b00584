"Drawing tickets end to end: the `draw` job on the embedded digits, resuming after a real kill, bad input, and properties of `prune`."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from hypothesis import given, settings, strategies as st

from lottery_fastai.draw import Ticket
from lottery_fastai.masks import prune, full_masks, LayerCollapseError, CRITERIA
from lottery_fastai.models import make_model

CLI = str(Path(sys.executable).parent/'lottery_fastai')
QUICK = ['--rounds', '3', '--epochs', '2', '--n', '1200', '--bs', '64', '--seed', '3']

def run(*args, **kw): return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=900, **kw)

def tickets(path): return [Ticket.load(p) for p in sorted((Path(path)/'tickets').glob('round_*.safetensors'))]

def test_imp_end_to_end(tmp_path):
    r = run('draw', *QUICK, '--controls', 'reinit,random_mask', '--path', str(tmp_path/'run'))
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path/'run'
    assert {p.name for p in run_dir.iterdir()} >= {'config.json', 'steps.json', 'history.csv', 'log.txt', 'tickets', 'dense.safetensors', 'controls.csv', 'accuracy_vs_sparsity.png'}
    hist = pd.read_csv(run_dir/'history.csv')
    assert list(hist['round']) == [0, 1, 2, 3]
    ts = tickets(run_dir)
    n_total = sum(m.numel() for m in ts[0].masks.values())
    kept = n_total
    for t,row in zip(ts, hist.itertuples()):
        n_kept = int(sum(m.sum() for m in t.masks.values()))
        assert n_kept == kept == row.kept                       # exact counts: 20% of the remaining, rounded, per round
        kept -= round(0.2*kept)
        assert abs(row.sparsity - (1 - n_kept/n_total)) < 1e-12
    for a,b in zip(ts, ts[1:]): assert all((b.masks[k] <= a.masks[k]).all() for k in a.masks)   # nested
    init = make_model('lenet300', n_in=1, n_out=10, seed=3).state_dict()
    for t in ts:
        for k,v in init.items(): assert torch.equal(t.state[k], v), k                           # rewound to the initialisation, bit for bit
    assert hist.test_acc.iloc[0] > 0.7 and hist.test_acc.iloc[-1] > 0.7, hist              # it learns (chance is 0.1) on 960 training digits in 2 epochs
    ctl = pd.read_csv(run_dir/'controls.csv')
    assert sorted(zip(ctl['round'], ctl.control)) == sorted((r_, c) for r_ in (1, 2, 3) for c in ('random_mask', 'reinit'))
    assert 'reinit_test_acc' in r.stdout and 'run folder' in r.stdout
    cfg = json.loads((run_dir/'config.json').read_text())
    assert cfg['seed'] == 3 and cfg['rounds'] == 3 and cfg['arch'] == 'lenet300'

@pytest.mark.parametrize('options', [[], ['--precision', 'bf16', '--compile']], ids=['fp32', 'bf16+compile'])
def test_resume_after_kill_matches_uninterrupted(tmp_path, options):
    args = ['draw', '--rounds', '3', '--epochs', '3', '--n', '3000', '--bs', '64', '--seed', '3', '--controls', '', *options]   # rounds of ~1.5 s
    ref = run(*args, '--path', str(tmp_path/'ref'))
    assert ref.returncode == 0, ref.stderr
    assert 'No CUDA runtime is found' not in ref.stderr, ref.stderr   # a CUDA build of torch compiling on a CPU: nothing to act on
    # the same draw, killed with SIGKILL once round 1 is finished and round 2 is training, then started again
    p = subprocess.Popen([CLI, *args, '--path', str(tmp_path/'run')], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hist = tmp_path/'run'/'history.csv'
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if hist.exists() and len(hist.read_text().splitlines()) >= 2: break   # header + round 0: round 1 is training
        time.sleep(0.02)
    assert p.poll() is None, 'the draw finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.wait()
    assert len(pd.read_csv(hist)) < 4                                            # it really stopped before the end
    res = run(*args, '--path', str(tmp_path/'run'))
    assert res.returncode == 0, res.stderr
    assert 'resuming after round' in (tmp_path/'run'/'log.txt').read_text()
    pd.testing.assert_frame_equal(pd.read_csv(hist), pd.read_csv(tmp_path/'ref'/'history.csv'))
    for a,b in zip(tickets(tmp_path/'run'), tickets(tmp_path/'ref'), strict=True):
        for k in a.masks: assert torch.equal(a.masks[k], b.masks[k]), k
        for k in a.state: assert torch.equal(a.state[k], b.state[k]), k
    assert not list((tmp_path/'run').rglob('*.tmp'))

@pytest.mark.parametrize('args,msg', [
    (['--rate', '1.5'], '--rate must be in (0, 1)'), (['--rate', '-0.1'], '--rate must be in (0, 1)'),
    (['--rounds', '0'], '--rounds must be'), (['--criterion', 'snipp'], "argument --criterion: invalid choice: 'snipp'"),
    (['--epochs', '0'], '--epochs must be a positive int'), (['--rewind_epoch', '9', '--epochs', '2'], '--rewind_epoch=9 puts the rewind point at iteration 9, outside'),
    (['--schedule', 'cosine'], "argument --schedule: invalid choice: 'cosine'"), (['--controls', 'late_reset'], '--controls must be a comma-separated subset'),
    (['--data', 'svhn'], "argument --data: invalid choice: 'svhn'"), (['--arch', 'resnet7'], '--arch must be one of'),
    (['--granularity', 'filter'], "--granularity must be 'weight', 'channel' or 'N:M'"),
    (['--granularity', '2:4', '--rounds', '3'], 'groups reach 2 of 4 after 2 rounds'),
    (['--granularity', 'channel', '--controls', 'shuffled'], "--controls 'shuffled' permutes weights inside rows")])
def test_bad_input_writes_nothing(tmp_path, args, msg):
    r = run('draw', '--n', '200', *args, '--path', str(tmp_path/'bad'))
    assert r.returncode == 2 and msg in r.stderr, r.stderr[-2000:]
    assert r.stderr.startswith('lottery_fastai: error: ') and len(r.stderr.strip().splitlines()) == 1, r.stderr   # one line, no traceback
    assert not (tmp_path/'bad').exists()

def test_structured_draws_from_the_command_line(tmp_path):
    "2:4 and channel tickets with their random controls: the pattern holds in every group of every round"
    from lottery_fastai.masks import nm_groups
    r = run('draw', '--rounds', '2', '--epochs', '1', '--n', '600', '--granularity', '2:4', '--controls', 'random_mask',
            '--path', str(tmp_path/'nm'))
    assert r.returncode == 0, r.stderr[-2000:]
    ts = tickets(tmp_path/'nm')
    for t, kept in zip(ts[1:], (3, 2), strict=True):
        assert t.meta['granularity'] == '2:4'
        for k,m in t.masks.items(): assert nm_groups(m, 4).sum(1).unique().tolist() == [kept], k
    assert len(pd.read_csv(tmp_path/'nm'/'controls.csv')) == 2
    r = run('draw', '--rounds', '1', '--epochs', '1', '--n', '600', '--arch', 'resnet8', '--granularity', 'channel',
            '--controls', '', '--path', str(tmp_path/'ch'))
    assert r.returncode == 0, r.stderr[-2000:]
    t = tickets(tmp_path/'ch')[-1]
    rows = {k: m.flatten(1).any(1) for k,m in t.masks.items()}
    assert not all(v.all() for v in rows.values())                                      # whole filters went
    assert torch.equal(rows['stages.0.0.conv2.weight'], rows['stem.0.weight'])   # coupled by the residual addition
    # spending keeps the channel structure, with the tweaks too (Swish, skips, re-scaling)
    r = run('spend', '--path', str(tmp_path/'ch'), '--recipes', 'vanilla,AT+TRT', '--gradinit_iters', '2')
    assert r.returncode == 0, r.stderr[-2000:]
    from lottery_fastai.io import load_tensors
    for recipe in ('vanilla', 'AT+TRT'):
        st = load_tensors(tmp_path/'ch'/'spend'/'models'/f'{recipe}_round_01_seed_0.safetensors')[0]
        for k,m in t.masks.items(): assert (st[k][~m] == 0).all(), (recipe, k)
    # the compact job: a smaller network with the masked one's outputs, rebuilt from its file alone
    from lottery_fastai.compact import load_compact
    r = run('compact', '--path', str(tmp_path/'ch'))
    assert r.returncode == 0, r.stderr[-2000:]
    small = load_compact(tmp_path/'ch'/'compact'/'round_01.safetensors').eval()
    model = t.build_model()
    model.load_state_dict(load_tensors(tmp_path/'ch'/'trained_01.safetensors')[0])
    masked = t.apply(model, rewind=False).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad(): assert torch.allclose(small(x), masked(x), atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    r = run('bench', '--tickets', '--archs', 'lenet300', '--reps', '1', '--path', str(tmp_path/'bench'))
    assert r.returncode == 0, r.stderr[-2000:]
    bt = pd.read_csv(tmp_path/'bench'/'bench_tickets.csv')
    assert {'dense', '2:4 (masked)', 'channels 50% (compact)'} <= set(bt.variant) and (bt.infer_ms > 0).all()

def test_other_settings_in_same_folder_refused(tmp_path):
    assert run('draw', '--rounds', '1', '--epochs', '1', '--n', '300', '--controls', '', '--path', str(tmp_path/'run')).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path/'run').rglob('*') if p.is_file()}
    r = run('draw', '--rounds', '1', '--epochs', '1', '--n', '300', '--controls', '', '--rate', '0.5', '--path', str(tmp_path/'run'))
    assert r.returncode != 0 and 'other settings' in r.stderr and 'rate' in r.stderr
    assert before == {p: p.read_bytes() for p in (tmp_path/'run').rglob('*') if p.is_file()}

# -- properties of `prune` over random shapes and weights
shapes = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4)

@settings(max_examples=60, deadline=None)
@given(shapes=shapes, rate=st.floats(0, 0.95), rounds=st.integers(1, 4), seed=st.integers(0, 2**16), ties=st.booleans())
def test_imp_counts_nesting_and_order(shapes, rate, rounds, seed, ties):
    g = torch.Generator().manual_seed(seed)
    ws = {f'w{i}': torch.randn(s, generator=g) for i,s in enumerate(shapes)}
    if ties: ws = {k: w.round() for k,w in ws.items()}                    # many equal magnitudes
    masks = full_masks(ws)
    for _ in range(rounds):
        left = int(sum(m.sum() for m in masks.values()))
        new = prune(ws, masks, rate=rate, allow_collapse=True)
        assert int(sum(m.sum() for m in new.values())) == left - round(rate*left)   # exact count
        assert all((new[k] <= masks[k]).all() for k in ws)                          # nothing comes back
        kept = torch.cat([ws[k][new[k]].abs() for k in ws]); dropped = torch.cat([ws[k][masks[k] & ~new[k]].abs() for k in ws])
        if len(kept) and len(dropped): assert dropped.max() <= kept.min()          # global magnitude order
        again = prune(ws, masks, rate=rate, allow_collapse=True)
        assert all(torch.equal(new[k], again[k]) for k in ws)                       # deterministic, ties included
        masks = new

@settings(max_examples=60, deadline=None)
@given(shapes=shapes, sparsity=st.floats(0, 0.99), seed=st.integers(0, 2**16), criterion=st.sampled_from(['global_magnitude', 'layer_magnitude', 'random']))
def test_one_shot_reaches_target(shapes, sparsity, seed, criterion):
    g = torch.Generator().manual_seed(seed)
    ws = {f'w{i}': torch.randn(s, generator=g) for i,s in enumerate(shapes)}
    n = sum(w.numel() for w in ws.values())
    try: new = prune(ws, sparsity=sparsity, criterion=criterion, seed=seed)
    except LayerCollapseError as e:                                   # refused only when some tensor really would be emptied
        new = prune(ws, sparsity=sparsity, criterion=criterion, seed=seed, allow_collapse=True)
        assert any(not m.any() for m in new.values()) and str(e)
        return
    kept = int(sum(m.sum() for m in new.values()))
    if CRITERIA[criterion].scope == 'global': assert kept == n - round(sparsity*n)
    else: assert all(int(m.sum()) == m.numel() - round(sparsity*m.numel()) for m in new.values())   # layer-wise: every tensor at the target

def test_the_main_jobs_description_draws_what_the_call_before_it_drew(tmp_path):
    """The main job as a `Draw` (2 rounds of 1 epoch on 640 digits) against the call of `Learner.draw` that `draw_job`
    made before the descriptions, written out by hand: the same config.json and the same tickets, byte for byte"""
    from dataclasses import replace
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from lottery_fastai.data import get_dls
    from lottery_fastai.cli import MAIN, run_draw
    d = replace(MAIN, data=replace(MAIN.data, n=640, bs=64), train=replace(MAIN.train, epochs=1),
                prune=replace(MAIN.prune, rounds=2))
    run_draw(d, controls='', path=str(tmp_path/'new'))
    learn = Learner(get_dls('mnist5k', bs=64, seed=0, n=640), make_model('resnet8', n_in=1, n_out=10, seed=0, width=8),
                    metrics=accuracy)
    meta = dict(arch='resnet8', n_in=1, n_out=10, data='mnist5k', n=640, bs=64, model_kwargs={'width': 8}, preset=None)
    with learn.no_bar(), learn.no_logging():
        learn.draw(rounds=2, n_epoch=1, lr=1e-2, fit='fit_one_cycle', fit_kwargs=None, rate=0.4, criterion='global_magnitude',
                   granularity='weight', allow_collapse=False, rewind='weights', rewind_iter=None, rewind_epoch=None,
                   rewind_pct=None, seed=0, data_seed=None, path=tmp_path/'old', meta=meta,
                   prunable_kwargs=dict(skip_first=False, skip_last=False), precision='fp32', channels_last=False,
                   compile=False, sync_bn=False)
    assert (tmp_path/'new'/'config.json').read_bytes() == (tmp_path/'old'/'config.json').read_bytes()
    for r in range(3):
        f = f'tickets/round_{r:02d}.safetensors'
        assert (tmp_path/'new'/f).read_bytes() == (tmp_path/'old'/f).read_bytes(), f
