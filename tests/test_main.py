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
    assert r.returncode == 2 and "lottery_fastai: error: argument --data: invalid choice: 'svhn'" in r.stderr
    assert not (tmp_path/'bad').exists()

def test_gpu_acceptance_script_runs_end_to_end_in_its_dry_mode(tmp_path):
    "scripts/gpu_check.py --tiny: every part of the GPU check at toy size on this CPU, one table (a check of the script, not a measurement)"
    import os, pandas as pd
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, str(root/'scripts'/'gpu_check.py'), '--tiny', '--out', str(tmp_path)], capture_output=True, text=True,
                       timeout=900, cwd=root, env={**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONPATH': str(root)})
    assert r.returncode == 0, r.stderr[-3000:]
    checks = pd.read_csv(tmp_path/'gpu_check.csv').check.tolist()
    for part in ('epoch: resnet20, batch 32, fp32, library', 'mask upkeep: resnet20', 'peak memory: resnet18', "preset 'spending' epoch",
                 'projected: the 16-round curve', '2:4 linear', 'DDP on one CPU process: resnet18, batch 32, DDP'):
        assert any(c.startswith(part) for c in checks), (part, checks)

def test_importing_the_library_leaves_torchvision_out():
    "torchvision (and the `torch._dynamo` it starts) is imported only for a model outside the zoo: about 2 s a process"
    code = ("import sys, lottery_fastai.cli, lottery_fastai.all; from lottery_fastai.models import make_model; "
            "make_model('resnet8', n_in=1); print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.split() == ['False', 'False'], (r.stdout, r.stderr[-2000:])
    code = "import sys; from lottery_fastai.models import make_model; make_model('resnet50', n_out=3); print('torchvision' in sys.modules)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.split() == ['True'], (r.stdout, r.stderr[-2000:])
