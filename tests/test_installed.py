"""Every job through the installed `lottery_fastai` command, at toy size: the tests `scripts/newest_env.sh` runs in a
virtualenv with the newest fastai and fastcore (no dev tools there, so no notebook), and the main suite runs too."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd

CLI = str(Path(sys.executable).parent/'lottery_fastai')
TINY = ['--arch', 'resnet20', '--width', '4', '--rounds', '1', '--rate', '0.5', '--epochs', '1', '--lr', '1e-2',
        '--n_images', '640', '--bs', '64']

def run(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{args}: {r.stderr[-2000:]}"
    return r

def test_every_job_from_the_installed_command(tmp_path):
    "draw with controls, spend, stability, elastic and figure, each read back from its folder"
    d = tmp_path/'draw'
    run('draw', *TINY, '--controls', 'reinit', '--path', str(d))
    h = pd.read_csv(d/'history.csv')
    assert list(h['round']) == [0, 1] and abs(h.sparsity.iloc[-1] - 0.5) < 0.01
    run('spend', '--path', str(d), '--recipes', 'vanilla,TRT', '--gradinit_iters', '2')
    sp = pd.read_csv(d/'spend'/'history.csv')
    assert sorted(sp.recipe) == ['TRT', 'vanilla']
    assert sp.set_index('recipe').test_acc['vanilla'] == h.test_acc.iloc[1]     # vanilla spending repeats the draw
    r_st = run('stability', '--path', str(d), '--ks', '0', '--pairs', '1', '--tickets', '')
    assert (d/'stability'/'instability.png').exists() and 'results:' in r_st.stdout
    run('elastic', '--from', str(d), '--to', 'resnet32', '--methods', 'elth,random')
    el = pd.read_csv(d/'elastic_resnet32'/'results.csv')
    assert sorted(el.method) == ['E-LTH', 'random'] and (el.test_acc > 0).all()
    f = tmp_path/'figures'
    r = run('figure', 'tableA1', '--quick', '--path', str(f), '--seeds', '0')
    assert (f/'figures'/'tableA1.csv').exists() and 'tableA1' in r.stdout
    assert json.loads((d/'config.json').read_text())['arch'] == 'resnet20'
