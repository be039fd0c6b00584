"End to end: the `lottery_fastai` command as a user runs it."
import json, subprocess, sys
from pathlib import Path

CLI = str(Path(sys.executable).parent/'lottery_fastai')

def run(*args): return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600)

def test_train_job_writes_run_folder(tmp_path):
    r = run('train', '--epochs', '2', '--path', str(tmp_path/'run'), '--seed', '1')
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path/'run'
    assert {p.name for p in run_dir.iterdir() if not p.name.startswith('.')} == {'config.json', 'steps.json', 'history.csv', 'log.txt', 'model.safetensors', 'results.json'}
    cfg = json.loads((run_dir/'config.json').read_text())
    assert cfg['seed'] == 1 and cfg['epochs'] == 2 and cfg['data'] == 'mnist5k'
    res = json.loads((run_dir/'results.json').read_text())
    assert res['test_acc'] > 0.85, res
    hist = (run_dir/'history.csv').read_text().strip().splitlines()
    assert hist[0] == 'epoch,train_loss,valid_loss,accuracy,time' and [r.split(',')[0] for r in hist[1:]] == ['0', '1']
    assert abs(float(hist[-1].split(',')[3]) - res['valid_acc']) < 1e-6   # the last epoch's valid accuracy is the reported one

def test_help_and_bad_input(tmp_path):
    r = run('train', '--help')
    assert r.returncode == 0 and '--epochs' in r.stdout and 'Epochs of' in r.stdout
    assert run().returncode == 2
    r = run('train', '--data', 'svhn', '--path', str(tmp_path/'bad'))
    assert r.returncode == 2 and 'lottery_fastai: error: --data must be one of' in r.stderr
    assert not (tmp_path/'bad').exists()
