"Verdicts only from networks that learned, seeds as the unit; defects found by a sceptical user, each reproduced first."
import hashlib, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
from fastai.learner import Learner
from fastai.metrics import accuracy
from lottery_fastai.data import get_dls
from lottery_fastai.models import make_model
from lottery_fastai.draw import Ticket
from lottery_fastai.stats import Gate, claim, per_seed

CLI = str(Path(sys.executable).parent/'lottery_fastai')

def test_run_that_does_not_train_gets_no_verdict():
    "A draw at a learning rate that moves nothing: its dense network sits near chance and every claim on it is refused"
    rows, dense = [], {}
    for seed in (0, 1):
        dls = get_dls('mnist5k', bs=64, n=600, seed=seed)
        learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=seed), metrics=accuracy)
        with learn.no_bar(), learn.no_logging():
            res = learn.draw(rounds=1, n_epoch=1, lr=1e-9, seed=seed, meta=dict(arch='lenet300', n_in=1, n_out=10))
            ctl = learn.draw_controls(res, kinds=['reinit'])
        h = res.history.set_index('round')
        dense[seed] = h.loc[0, 'test_acc']
        rows.append(dict(seed=seed, d=100*(h.loc[1, 'test_acc'] - ctl.set_index('round').loc[1, 'test_acc'])))
    gate = Gate(dense, 'mnist5k', 'lenet300')
    assert not gate.ok and max(dense.values()) < 0.5
    d = pd.DataFrame(rows).set_index('seed').d
    row = claim('the ticket beats its re-initialisation', d, gate=gate)
    assert row['verdict'] == f"not evaluable: the dense network reached {100*min(dense.values()):.1f}% (chance 10%, floor 93%)"
    assert row['n'] == 2                     # the numbers are still reported, with the seeds as n

def test_rounds_of_one_seed_are_one_measurement():
    "Three seeds of five rounds each are n = 3, whatever the rounds say; a table without seeds is refused"
    idx = pd.MultiIndex.from_product([[0, 1, 2], range(1, 6)], names=['seed', 'round'])
    d = pd.Series(np.linspace(0.5, 1.5, 15), index=idx)
    assert claim('x', d)['n'] == 3 and per_seed(d).index.tolist() == [0, 1, 2]
    try: claim('x', d.reset_index(drop=True))
    except ValueError as e: assert 'indexed by seed' in str(e)
    else: raise AssertionError('differences without a seed index were accepted')

def test_barrier_cost_runs_from_the_installed_module():
    "It raised NameError ('partial') outside the notebook, whose test cell imported what the module lacked"
    from lottery_fastai.stability import barrier_cost
    dls = get_dls('mnist5k', bs=64, n=320, seed=0)
    out = barrier_cost(make_model('lenet300', n_in=1, n_out=10, seed=0), dls, n=3)
    assert out['barrier_s'] > 0 and out['epoch_s'] > 0 and out['n'] == 3

def test_bf16_and_fp16_draws_differ(tmp_path):
    "`--precision bf16` ran float16 with loss scaling: the two gave identical files"
    digests = {}
    for p in ('bf16', 'fp16'):
        r = subprocess.run([CLI, 'draw', '--rounds', '1', '--epochs', '1', '--n', '600', '--bs', '64', '--controls', '',
                            '--precision', p, '--path', str(tmp_path/p)], capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        digests[p] = hashlib.sha256((tmp_path/p/'trained_01.safetensors').read_bytes()).hexdigest()
    assert digests['bf16'] != digests['fp16']
