"Sparse training inside one fit: its tickets go where drawn tickets go; per-tensor targets through `draw`; callbacks in a draw."
import math
import pytest, torch
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.metrics import accuracy
from lottery_fastai.data import get_dls, reseed
from lottery_fastai.models import make_model
from lottery_fastai.masks import prunable, layer_targets
from lottery_fastai.draw import prune_at_init
from lottery_fastai.sparse import RigL, SET, GradualPruning, ImpInFit
from lottery_fastai.elastic import transfer
from lottery_fastai.stability import stability
from lottery_fastai import compact   # noqa: F401  (patches Ticket.compact)


@pytest.fixture(scope='module')
def dls(): return get_dls('mnist5k', bs=64, n=320, seed=0)

def fit(dls, cb, n_epoch=1, seed=0, arch='resnet8'):
    "A fresh network of `arch` (width 4) trained with `cb`; the learner and the ticket"
    reseed(seed, dls)
    learn = Learner(dls, make_model(arch, n_in=1, n_out=10, seed=seed, width=4), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(n_epoch, 1e-2, cbs=cb)
    return learn, cb.ticket()

@pytest.mark.parametrize('cls', [RigL, SET])
def test_a_dynamic_sparse_ticket_transfers_compacts_and_stabilises(dls, cls):
    "The ticket of a RigL/SET fit on ResNet-14: elastic transfer to ResNet-20, compact (same outputs), a stability pair"
    _, t = fit(dls, cls(0.8, every=1), arch='resnet14')
    assert t.meta['arch'] == 'resnet14' and t.meta['model_kwargs'] == {'width': 4}
    assert t.meta['method'] == cls.__name__.lower() and t.meta['rewind_iter'] == 0
    assert {k: int(m.sum()) for k,m in t.masks.items()} == layer_targets(t.masks, 0.8, 'erk')
    deeper = transfer(t, 'resnet20')
    m20 = deeper.build_model()
    deeper.check(m20)
    assert set(deeper.masks) == set(prunable(m20)) and abs(deeper.sparsity - t.sparsity) < 0.05
    small = t.compact(example=torch.zeros(1, 1, 28, 28))
    masked = t.apply(t.build_model()).eval()
    x = dls.one_batch()[0][:8].as_subclass(torch.Tensor)
    torch.testing.assert_close(small.eval()(x), masked(x), rtol=1e-4, atol=1e-4)
    learn = Learner(dls, t.build_model(), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): out = stability(learn, ks=(0,), tickets={'rigl': t}, pairs=1, n_epoch=1, n=3)
    row = out[out.label == 'rigl']
    assert len(row) == 1 and math.isfinite(row.barrier_test.iloc[0]) and abs(row.sparsity.iloc[0] - t.sparsity) < 1e-9

def test_a_resumed_dynamic_fit_equals_an_uninterrupted_one(dls):
    "Two fits of the same seed move the mask the same way (SET's growth included): a restarted fit is the same fit"
    a = fit(dls, SET(0.8, every=1, seed=3))[1]
    b = fit(dls, SET(0.8, every=1, seed=3))[1]
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    c = fit(dls, SET(0.8, every=1, seed=4))[1]
    assert any(not torch.equal(a.masks[k], c.masks[k]) for k in a.masks)

def test_agp_and_imp_in_one_fit_tickets_retrain(dls):
    "GradualPruning and ImpInFit end in tickets that `retrain` takes, at the sparsity they reached"
    learn, t = fit(dls, GradualPruning(0.7, start=0.1, end=0.9, every=1))
    assert abs(t.sparsity - 0.7) < 1e-3
    sc = Learner(dls, t.build_model(), metrics=accuracy).retrain(t, n_epoch=1, lr=1e-2)
    assert 0 <= sc['test_acc'] <= 1
    _, t2 = fit(dls, ImpInFit([0, 1], rate=0.3), n_epoch=3)
    n = sum(m.numel() for m in t2.masks.values())
    left = n - round(0.3*n)
    assert sum(int(m.sum()) for m in t2.masks.values()) == left - round(0.3*left)

class Count(Callback):
    def __init__(self): self.fits = 0
    def before_fit(self): self.fits += 1

def test_draw_hands_callbacks_to_every_round(dls, tmp_path):
    "`draw(cbs=...)` reaches every round's fit and is recorded by name; callbacks in `fit_kwargs` are refused"
    c = Count()
    learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=0), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): res = learn.draw(rounds=2, n_epoch=1, cbs=[c], path=tmp_path/'d')
    assert c.fits == 3 and res.config['cbs'] == ['Count']
    learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=0), metrics=accuracy)
    with pytest.raises(ValueError, match="`fit_kwargs` must not hold 'cbs'"):
        learn.draw(rounds=1, n_epoch=1, fit_kwargs={'cbs': [Count()]})

def test_one_shot_with_a_distribution(dls):
    "`omp(distribution='erk')` and `prune_at_init(distribution=...)` keep each tensor's exact count; IMP's rate is refused"
    learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=0), metrics=accuracy)
    ws = prunable(learn.model)
    with learn.no_bar(), learn.no_logging(): res = learn.omp(0.9, n_epoch=1, distribution='erk')
    t = res.tickets[-1]
    assert {k: int(m.sum()) for k,m in t.masks.items()} == layer_targets(ws, 0.9, 'erk')
    assert res.config['distribution'] == 'erk' and t.meta['distribution'] == 'erk'
    snip = prune_at_init(make_model('lenet300', n_in=1, n_out=10, seed=0), dls, 'snip', 0.8, distribution='uniform')
    assert {k: int(m.sum()) for k,m in snip.masks.items()} == layer_targets(ws, 0.8, 'uniform')
    learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=0), metrics=accuracy)
    with pytest.raises(ValueError, match='give `sparsity`'): learn.draw(rounds=2, n_epoch=1, distribution='erk')

def test_draws_without_the_new_settings_keep_their_identity(dls):
    "A draw that gives neither `distribution` nor `cbs` writes neither into its config: every folder before still opens"
    learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=0), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): res = learn.draw(rounds=1, n_epoch=1)
    assert 'distribution' not in res.config and 'cbs' not in res.config

def test_a_sparse_job_killed_mid_fit_ends_in_the_same_files(tmp_path):
    "kill -9 during the fit of `lottery_fastai sparse --spend vanilla`, run again: the ticket and the scores of a run never killed"
    import hashlib, signal, subprocess, sys, time
    from pathlib import Path
    import pandas as pd
    cli = str(Path(sys.executable).parent/'lottery_fastai')
    args = ['sparse', '--method', 'set', '--sparsity', '0.8', '--arch', 'resnet8', '--width', '4', '--epochs', '3',
            '--n', '1500', '--bs', '64', '--lr', '0.01', '--every', '3', '--seed', '2', '--spend', 'vanilla']
    ref = subprocess.run([cli, *args, '--path', str(tmp_path/'ref')], capture_output=True, text=True, timeout=900)
    assert ref.returncode == 0, ref.stderr
    p = subprocess.Popen([cli, *args, '--path', str(tmp_path/'run')], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log, deadline = tmp_path/'run'/'log.txt', time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if log.exists() and 'epoch 1/3' in log.read_text(): break   # the first epoch is done, the fit goes on
        time.sleep(0.02)
    assert p.poll() is None, 'the job finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (tmp_path/'run'/'ticket.safetensors').exists()
    again = subprocess.run([cli, *args, '--path', str(tmp_path/'run')], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    digest = lambda f: hashlib.sha256(f.read_bytes()).hexdigest()
    assert digest(tmp_path/'run'/'ticket.safetensors') == digest(tmp_path/'ref'/'ticket.safetensors')
    numbers = lambda f: (lambda d: d[[c for c in d if not c.endswith('_s')]])(pd.read_csv(f))   # wall times aside
    pd.testing.assert_frame_equal(numbers(tmp_path/'run'/'scores.csv'), numbers(tmp_path/'ref'/'scores.csv'))
    assert not list((tmp_path/'run').rglob('*.tmp'))
