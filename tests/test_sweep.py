"A figure's seeds as submitit jobs on this machine: the same files as the sequential run, byte for byte, also after a killed worker."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd

CLI = str(Path(sys.executable).parent/'lottery_fastai')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}   # one thread each: the same sums in every process

def holder(folder):
    try: return json.loads((folder/'.lock.json').read_text())['pid']
    except (OSError, ValueError, KeyError): return None

def test_local_executor_matches_the_sequential_run_after_a_kill(tmp_path):
    args = ['figure', 'fig4a', '--quick', '--seeds', '0,1']
    seq = subprocess.run([CLI, *args, '--path', str(tmp_path/'seq')], capture_output=True, text=True, env=ENV, timeout=1800)
    assert seq.returncode == 0, seq.stderr[-2000:]
    par = subprocess.Popen([CLI, *args, '--path', str(tmp_path/'par'), '--executor', 'local', '--workers', '2'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    # seed 1's worker, once it has finished its dense round: killed as a pre-emption would
    folder = tmp_path/'par'/'rewind_to_init'/'seed_1'
    deadline, pid = time.time() + 600, None
    while time.time() < deadline and par.poll() is None:
        steps = folder/'steps.json'
        if steps.exists() and 'round_00' in steps.read_text() and (pid := holder(folder)): break
        time.sleep(0.05)
    assert pid and pid != par.pid, 'the worker never reached its first round'
    os.kill(pid, signal.SIGKILL)
    out, _ = par.communicate(timeout=1800)
    assert par.returncode == 0, out[-3000:]
    assert 'submitting it again' in out, out[-3000:]
    a, b = (pd.read_csv(tmp_path/p/'figures'/'fig4a.csv') for p in ('seq', 'par'))
    timing = [c for c in a if c.endswith('_s')]   # wall-clock columns
    pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    for s in (0, 1):   # the tickets too, tensor for tensor
        for p in sorted((tmp_path/'seq'/'rewind_to_init'/f'seed_{s}'/'tickets').glob('*.safetensors')):
            q = tmp_path/'par'/'rewind_to_init'/f'seed_{s}'/'tickets'/p.name
            from lottery_fastai.io import load_tensors
            ta, tb = load_tensors(p)[0], load_tensors(q)[0]
            assert all((ta[k] == tb[k]).all() for k in ta), p.name
    from test_reliability import digests   # and every file, byte for byte (logs, submitit's own files and wall-clock times aside)
    a, b = ({k: v for k,v in digests(tmp_path/p).items() if not k.startswith('submitit/')} for p in ('seq', 'par'))
    assert a.keys() == b.keys(), set(a) ^ set(b)
    assert [k for k in a if a[k] != b[k]] == []

def test_plan_prints_the_commands(tmp_path):
    r = subprocess.run([CLI, 'figure', 'fig9', '--quick', '--seeds', '0,1', '--plan', '--path', str(tmp_path)],
                       capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and r.stdout.splitlines() == [f'lottery_fastai figure fig9 --path {tmp_path} --quick --seeds {s}'
                                                             for s in ('0', '1', '0,1')], r.stdout
    assert not any(tmp_path.iterdir())   # nothing trained, nothing written
