"Run folders that two processes cannot corrupt, resume that always finishes, types that survive, errors a user can read."
import errno, json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch

from lottery_fastai.io import write_table, read_table, DiskError
import lottery_fastai.io as lio
from lottery_fastai.models import MODELS, make_model
from lottery_fastai.tweaks import activation_sparsity
from lottery_fastai.runs import Run, lock_holder
from lottery_fastai.draw import Ticket

CLI = str(Path(sys.executable).parent/'lottery_fastai')
TINY = ['--rounds', '2', '--epochs', '1', '--n', '600', '--bs', '64', '--controls', '']

def run(*args, **kw): return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=900, **kw)

def wait_for(cond, p, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None and not cond(): time.sleep(0.02)
    return cond()

def holder(folder):
    "The pid a run folder's lock record names, or None while it is absent or half written"
    try: return json.loads((folder/'.lock.json').read_text())['pid']
    except (OSError, ValueError, KeyError): return None

def test_second_process_refused_at_once(tmp_path):
    "Two draws on one folder: the second is refused at once, naming the first; the first finishes with every round"
    args = ['draw', '--rounds', '2', '--epochs', '3', '--n', '2000', '--bs', '64', '--controls', 'reinit', '--path', str(tmp_path/'run')]
    first = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: holder(tmp_path/'run') == first.pid, first), 'the first draw never took the lock'
    first.send_signal(signal.SIGSTOP)   # paused while it holds the lock: however loaded the machine, it cannot finish first
    try:
        t0 = time.time()
        second = run(*args[:-2], '--controls', 'random_mask', '--path', str(tmp_path/'run'))
    finally: first.send_signal(signal.SIGCONT)
    assert second.returncode == 2 and time.time() - t0 < 60, second.stderr
    assert f'is in use by process {first.pid} on ' in second.stderr and 'started' in second.stderr, second.stderr
    assert first.wait(timeout=900) == 0
    hist = pd.read_csv(tmp_path/'run'/'history.csv')
    assert list(hist['round']) == [0, 1, 2] and set(pd.read_csv(tmp_path/'run'/'controls.csv').control) == {'reinit'}
    assert lock_holder(tmp_path/'run') is None
    again = run(*args[:-2], '--controls', 'random_mask', '--path', str(tmp_path/'run'))   # once free, the other controls join
    assert again.returncode == 0, again.stderr
    ctl = pd.read_csv(tmp_path/'run'/'controls.csv')
    assert sorted(zip(ctl['round'], ctl.control)) == sorted((r, c) for r in (1, 2) for c in ('reinit', 'random_mask'))

def test_stale_lock_after_kill_does_not_block_resume(tmp_path):
    args = ['draw', *TINY, '--path', str(tmp_path/'run')]
    p = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: (tmp_path/'run'/'steps.json').exists(), p), 'no round finished before the end'
    assert p.poll() is None, 'the draw finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.wait()
    assert holder(tmp_path/'run') == p.pid                                    # the killed process left its record...
    assert lock_holder(tmp_path/'run') is None                                # ...but no lock: the kernel released it
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(tmp_path/'run'/'history.csv')['round']) == [0, 1, 2] and lock_holder(tmp_path/'run') is None

def test_lock_record_of_another_host_or_a_reused_pid_does_not_block(tmp_path):
    "A record naming another host, or a live unrelated process, was refused for ever; only a held lock refuses now"
    args = ['draw', *TINY, '--path', str(tmp_path/'run')]
    for rec in (dict(pid=1, host='another-host', started='last week', cmd='lottery_fastai draw'),
                dict(pid=os.getppid(), host=socket.gethostname(), started='earlier', cmd='lottery_fastai draw')):
        (tmp_path/'run').mkdir(exist_ok=True)
        (tmp_path/'run'/'.lock.json').write_text(json.dumps(rec))
        r = run(*args)
        assert r.returncode == 0, r.stderr

@pytest.mark.parametrize('arch', sorted(MODELS))
def test_tables_round_trip_types_for_every_model(tmp_path, arch):
    "The activation-zeros table of every model of the zoo reads back with its types (LeNet's modules are named '2', '4')"
    kw = {'img_size': 32} if arch in ('lenet300', 'conv2', 'conv4', 'conv6') else {}
    m = make_model(arch, n_in=3, n_out=10, seed=0, **kw)
    x = torch.randn(2, 3, 32, 32)
    acts = activation_sparsity(m, [(x, torch.zeros(2, dtype=torch.long))], n_batches=1).assign(round=1, seed=0, recipe='vanilla')
    write_table(tmp_path/'acts.csv', acts)
    back = read_table(tmp_path/'acts.csv')
    pd.testing.assert_frame_equal(back, acts)
    assert all(isinstance(v, str) for v in back.module)

def test_spend_resumes_on_a_lenet_draw(tmp_path):
    "Defect: re-running `spend` on a LeNet draw failed after all the work (module names came back as ints)"
    assert run('draw', *TINY, '--arch', 'lenet300', '--spend', 'vanilla,swish', '--path', str(tmp_path/'d')).returncode == 0
    r = run('spend', '--recipes', 'vanilla,swish', '--path', str(tmp_path/'d'))
    assert r.returncode == 0, r.stderr
    assert 'share of exact zeros after the activations' in r.stdout

def test_disk_error_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    "A full disk while a table is written: the error names the file, the previous version stays, and the next write succeeds"
    write_table(tmp_path/'h.csv', pd.DataFrame({'a': [1]}))
    real = os.replace
    def full(src, dst):
        if str(dst).endswith('h.csv'): raise OSError(errno.ENOSPC, 'No space left on device')
        return real(src, dst)
    monkeypatch.setattr(lio.os, 'replace', full)
    with pytest.raises(DiskError, match=r'could not write .*h\.csv \(No space left on device\); the run folder is intact'):
        write_table(tmp_path/'h.csv', pd.DataFrame({'a': [1, 2]}))
    assert read_table(tmp_path/'h.csv').a.tolist() == [1] and not list(tmp_path.glob('.*.tmp'))
    monkeypatch.setattr(lio.os, 'replace', real)
    write_table(tmp_path/'h.csv', pd.DataFrame({'a': [1, 2]}))
    assert read_table(tmp_path/'h.csv').a.tolist() == [1, 2]

def test_unwritable_folder_is_a_one_line_error(tmp_path):
    (tmp_path/'file').write_text('not a folder')
    r = run('draw', *TINY, '--path', str(tmp_path/'file'/'run'))
    assert r.returncode == 2 and r.stderr.startswith('lottery_fastai: error: --path '), r.stderr
    assert 'cannot be written (Not a directory): choose a folder you can write' in r.stderr and len(r.stderr.splitlines()) == 1

def test_ticket_from_another_draw_is_refused(tmp_path):
    for name,seed in (('a', '0'), ('b', '1')): assert run('draw', *TINY, '--seed', seed, '--path', str(tmp_path/name)).returncode == 0
    (tmp_path/'a'/'tickets'/'round_01.safetensors').write_bytes((tmp_path/'b'/'tickets'/'round_01.safetensors').read_bytes())
    r = run('spend', '--recipes', 'vanilla', '--path', str(tmp_path/'a'))
    assert r.returncode == 2 and 'round_01.safetensors does not belong to this draw (seed 1 there, 0 in the draw)' in r.stderr, r.stderr
    assert not (tmp_path/'a'/'spend').exists()

def test_failed_start_does_not_block_the_corrected_command(tmp_path):
    "A command that fails on its arguments writes nothing; one that fails during its first round leaves a folder the corrected command reuses"
    r = run('draw', *TINY, '--schedule', 'step', '--path', str(tmp_path/'run'))
    assert r.returncode == 2 and '--epochs >= 3 (now 1)' in r.stderr and not (tmp_path/'run').exists(), r.stderr
    r = run('draw', *TINY, '--lr', '1e6', '--path', str(tmp_path/'run'))   # diverges in round 0
    assert r.returncode == 2 and 'the training loss became NaN or infinite' in r.stderr, r.stderr
    assert (tmp_path/'run'/'config.json').exists() and not (tmp_path/'run'/'tickets').exists()   # nothing was pruned or saved
    r = run('draw', *TINY, '--path', str(tmp_path/'run'))
    assert r.returncode == 0, r.stderr

TORCHRUN = str(Path(sys.executable).parent/'torchrun')

def test_two_processes_over_gloo_draw_the_same_masks_and_resume(tmp_path):
    "Data parallel on the CPU: 2 processes (gloo) draw the masks one process draws; killed after round 0, the job resumes and ends the same"
    args = ['draw', '--arch', 'lenet300', '--rounds', '2', '--epochs', '1', '--bs', '64', '--controls', '',
            '--n_images', '2000']   # --n's other name: torchrun reads --n as its own
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    single = run(*args, '--path', str(tmp_path/'single'), env=env)
    assert single.returncode == 0, single.stderr
    cmd = [TORCHRUN, '--nproc_per_node', '2', '--master_port', str(29500 + os.getpid() % 400), CLI, *args, '--path', str(tmp_path/'multi')]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    steps = tmp_path/'multi'/'steps.json'
    assert wait_for(lambda: steps.exists() and 'round_00' in steps.read_text(), p), 'round 0 never finished'
    if p.poll() is None: os.killpg(p.pid, signal.SIGKILL); p.wait()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (tmp_path/'multi'/'log.txt').read_text()
    assert 'masks identical on 2 processes' in log
    for rnd in (1, 2):
        a, b = (Ticket.load(tmp_path/f/'tickets'/f'round_0{rnd}.safetensors') for f in ('multi', 'single'))
        for k in a.masks: assert torch.equal(a.masks[k], b.masks[k]), (rnd, k)
    assert r.stdout.count('run folder:') == 1                                        # rank 0 speaks for both

def test_jobs_never_read_an_unfinished_draw(tmp_path):
    "spend refuses a draw that is running or was killed, naming the rounds done; stability finishes its draw first"
    folder = tmp_path/'run'
    p = subprocess.Popen([CLI, 'draw', *TINY, '--path', str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: holder(folder) == p.pid, p), 'the draw never took the lock'
    p.send_signal(signal.SIGSTOP)      # alive and holding the lock, with its rounds not all done
    try:
        r = run('spend', '--path', str(folder), '--recipes', 'vanilla')
        assert r.returncode == 2 and f'process {p.pid}' in r.stderr and 'running now' in r.stderr, r.stderr
        r = run('elastic', '--from', str(folder), '--to', 'resnet32')   # the option typed is named, not `--path`
        assert r.returncode == 2 and 'running now' in r.stderr and '--path' not in r.stderr, r.stderr
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    steps = json.loads((folder/'steps.json').read_text())['steps'] if (folder/'steps.json').exists() else {}
    done = sum(k.startswith('round_') for k in steps)
    assert done < 3
    r = run('spend', '--path', str(folder), '--recipes', 'vanilla')
    assert r.returncode == 2 and f'unfinished draw: {done} of its 3 rounds' in r.stderr, r.stderr
    assert not (folder/'spend').exists()
    r = run('stability', '--path', str(folder), *TINY[:-2], '--pairs', '1')   # the same options: it finishes the draw
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(folder/'history.csv')['round']) == [0, 1, 2]
    labels = {v['row']['label'] for k,v in json.loads((folder/'stability'/'steps.json').read_text())['steps'].items() if 'row' in v}
    assert {l.split(' (')[0] for l in labels} == {'dense', 'round 1', 'round 2'}, labels
    # a finished draw is there: draw options that differ from it are refused, not silently ignored
    before = (folder/'stability'/'steps.json').read_bytes()
    r = run('stability', '--path', str(folder), '--arch', 'resnet8', '--epochs', '1', '--pairs', '1')
    assert r.returncode == 2 and 'holds a finished draw made with other settings: --arch resnet8 (lenet300 there)' in r.stderr, r.stderr
    assert (folder/'stability'/'steps.json').read_bytes() == before

def test_tables_are_rebuilt_from_the_record(tmp_path):
    "history.csv falling behind steps.json (a kill between the commit and the table) is rebuilt when the folder opens"
    args = ['draw', *TINY, '--path', str(tmp_path/'run')]
    assert run(*args).returncode == 0
    h = tmp_path/'run'/'history.csv'
    full = pd.read_csv(h)
    full.iloc[:-1].to_csv(h, index=False)            # the last round's row lost
    r = run(*args)
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(h), full)
    h.unlink()                                       # no table at all: spend reads the record
    r = run('spend', '--path', str(tmp_path/'run'), '--recipes', 'vanilla')
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(tmp_path/'run'/'spend'/'history.csv')['round']) == [1, 2]

def test_ticket_of_another_draw_is_refused(tmp_path):
    "Same architecture and seed, another rate: its ticket copied into this draw's folder was accepted"
    from fastai.learner import Learner
    from lottery_fastai.data import get_dls
    from lottery_fastai.draw import DrawResult
    dls = get_dls('mnist5k', bs=64, n=600, seed=0)
    for name,rate in (('a', 0.2), ('b', 0.5)):
        learn = Learner(dls, make_model('lenet300', n_in=1, n_out=10, seed=0))
        with learn.no_bar(), learn.no_logging():
            learn.draw(rounds=1, n_epoch=1, lr=1e-3, rate=rate, path=tmp_path/name, meta=dict(arch='lenet300', n_in=1, n_out=10))
    DrawResult.load(tmp_path/'a')
    f = 'tickets/round_01.safetensors'
    (tmp_path/'a'/f).write_bytes((tmp_path/'b'/f).read_bytes())
    with pytest.raises(ValueError, match='does not belong to this draw .*draw_id'): DrawResult.load(tmp_path/'a')

def test_broken_pipe_is_not_a_user_error(tmp_path):
    "`lottery_fastai draw ... | head -1`: the reader leaves; the job stops quietly (141, as a shell says), no 'error:'"
    p = subprocess.Popen([CLI, 'draw', '--rounds', '3', '--epochs', '2', '--n', '600', '--bs', '64', '--controls', '',
                          '--path', str(tmp_path/'run')], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.readline()                              # what `head -1` reads, then it exits
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=900) == 141, err
    assert 'error' not in err.lower() and 'Traceback' not in err, err

WALL_CLOCK = {'seconds', 'train_s', 'gradinit_s'}   # keys whose values are wall-clock times, never the same twice

def _no_wall_clock(x):
    if isinstance(x, dict): return {k: _no_wall_clock(v) for k,v in x.items() if k not in WALL_CLOCK}
    if isinstance(x, list): return [_no_wall_clock(v) for v in x]
    return x

def digests(folder):
    "SHA-256 of every file of a run folder but its logs and lock; steps.json and tables with their wall-clock times dropped"
    import hashlib
    out = {}
    for f in sorted(Path(folder).rglob('*')):
        if not f.is_file() or f.name in ('log.txt', '.lock', '.lock.json'): continue
        b = f.read_bytes()
        if f.name == 'steps.json': b = json.dumps(_no_wall_clock(json.loads(b)), sort_keys=True).encode()
        if f.suffix == '.csv' and WALL_CLOCK & set(pd.read_csv(f).columns):   # a table with wall-clock columns: the rest, byte for byte
            b = pd.read_csv(f).drop(columns=list(WALL_CLOCK), errors='ignore').to_csv(index=False).encode()
        out[str(f.relative_to(folder))] = hashlib.sha256(b).hexdigest()
    return out

def _steps(f):
    try: return len(json.loads(f.read_text())['steps'])
    except (OSError, ValueError, KeyError): return 0

@pytest.mark.parametrize('job', ['draw', 'stability'])
def test_kill_and_resume_gives_the_same_bytes(tmp_path, job):
    "SIGKILL in the middle of a job, then the same command: every file has the SHA-256 of an uninterrupted run's"
    args = [job, '--rounds', '2', '--epochs', '2', '--n', '1200', '--bs', '64', '--seed', '1']
    args += ['--controls', 'reinit'] if job == 'draw' else ['--pairs', '1', '--ks', '0,10%']
    ref = run(*args, '--path', str(tmp_path/'ref'))
    assert ref.returncode == 0, ref.stderr
    folder = tmp_path/'run'
    p = subprocess.Popen([CLI, *args, '--path', str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # draw: killed once round 0 is recorded; stability: once its first child is recorded
    mark = folder/'steps.json' if job == 'draw' else folder/'stability'/'steps.json'
    assert wait_for(lambda: _steps(mark) >= 1, p, timeout=600), 'no step was recorded'
    assert p.poll() is None, 'the job finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.wait()
    r = run(*args, '--path', str(folder))
    assert r.returncode == 0, r.stderr
    a, b = digests(folder), digests(tmp_path/'ref')
    assert a.keys() == b.keys(), set(a) ^ set(b)
    assert [k for k in a if a[k] != b[k]] == []

@pytest.mark.parametrize('job', ['spend', 'elastic', 'draw --spend'])
def test_kill_and_resume_of_the_jobs_that_read_a_draw_gives_the_same_bytes(tmp_path, job):
    "SIGKILL once the job has recorded its first step, then the same command: the draw's folder, with what the job wrote into it, has the SHA-256 of an uninterrupted run's"
    import shutil
    src = ['draw', '--rounds', '2', '--epochs', '2', '--n', '1200', '--bs', '64', '--seed', '1', '--controls', '']
    if job == 'elastic': src += ['--arch', 'resnet20', '--width', '4']
    if job == 'draw --spend':
        args, mark = [*src, '--spend', 'vanilla,TRT'], 'spend/steps.json'
    else:
        assert run(*src, '--path', str(tmp_path/'draw')).returncode == 0
        for d in ('ref', 'run'): shutil.copytree(tmp_path/'draw', tmp_path/d)
        args, mark = (['spend', '--recipes', 'vanilla,TRT', '--seeds', '0,1'], 'spend/steps.json') if job == 'spend' else \
                     (['elastic', '--to', 'resnet32', '--methods', 'elth,random,snip'], 'elastic_resnet32/steps.json')
    where = '--path' if job != 'elastic' else '--from'
    ref = run(*args, where, str(tmp_path/'ref'))
    assert ref.returncode == 0, ref.stderr
    p = subprocess.Popen([CLI, *args, where, str(tmp_path/'run')], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _steps(tmp_path/'run'/mark) >= 1, p, timeout=600), 'no step was recorded'
    assert p.poll() is None, 'the job finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.wait()
    r = run(*args, where, str(tmp_path/'run'))
    assert r.returncode == 0, r.stderr
    a, b = digests(tmp_path/'run'), digests(tmp_path/'ref')
    assert a.keys() == b.keys(), set(a) ^ set(b)
    if job == 'elastic':   # its config names its source folder, which is 'run' here and 'ref' there: the rest is the same
        cfg = [json.loads((tmp_path/d/'elastic_resnet32'/'config.json').read_text()) for d in ('run', 'ref')]
        assert [c.pop('source') for c in cfg] == [str(tmp_path/'run'), str(tmp_path/'ref')] and cfg[0] == cfg[1]
        a.pop('elastic_resnet32/config.json'), b.pop('elastic_resnet32/config.json')
    assert [k for k in a if a[k] != b[k]] == []

def test_one_line_per_epoch_when_piped(tmp_path):
    "A piped job says what it is doing every epoch, with the round it belongs to, and never draws progress frames"
    r = run('draw', '--rounds', '1', '--epochs', '2', '--n', '600', '--bs', '64', '--controls', '', '--spend', 'vanilla',
            '--path', str(tmp_path/'run'))
    assert r.returncode == 0, r.stderr
    heads = [l.split(':')[0] for l in r.stdout.splitlines() if ', epoch ' in l]
    assert heads == ['round 0, epoch 1/2', 'round 0, epoch 2/2', 'round 1, epoch 1/2', 'round 1, epoch 2/2',
                     'vanilla, round 1, seed 0, epoch 1/2', 'vanilla, round 1, seed 0, epoch 2/2'], r.stdout
    assert '\r' not in r.stdout and '<progress' not in r.stdout and '[0, ' not in r.stdout

def test_draw_takes_more_rounds_later_and_a_collapse_says_how_to_finish(tmp_path):
    "A draw's folder takes more rounds (same tickets as drawing them at once), never fewer than it finished; a layer "
    "collapse names its round and the command that finishes the folder as it is"
    e = ['draw', '--epochs', '1', '--n', '600', '--bs', '64', '--controls', '']
    assert run(*e, '--rounds', '1', '--path', str(tmp_path/'e')).returncode == 0
    r = run(*e, '--rounds', '2', '--path', str(tmp_path/'e'))
    assert r.returncode == 0, r.stderr
    assert run(*e, '--rounds', '2', '--path', str(tmp_path/'ref')).returncode == 0
    for f in ('round_01', 'round_02'):
        a, b = (Ticket.load(tmp_path/d/'tickets'/f'{f}.safetensors') for d in ('e', 'ref'))
        for k in a.masks: assert torch.equal(a.masks[k], b.masks[k]), (f, k)
    before = (tmp_path/'e'/'config.json').read_bytes()
    r = run(*e, '--rounds', '1', '--path', str(tmp_path/'e'))
    assert r.returncode == 2 and 'holds 2 finished pruned rounds: --rounds must be at least 2, got 1' in r.stderr, r.stderr
    assert (tmp_path/'e'/'config.json').read_bytes() == before
    c = ['draw', '--rate', '0.9', '--epochs', '1', '--n', '300', '--controls', '', '--path', str(tmp_path/'c')]
    r = run(*c, '--rounds', '6')
    assert r.returncode == 2 and 'round 2: layer collapse' in r.stderr and '--allow_collapse' in r.stderr, r.stderr
    assert '--rounds 1 finishes this draw there' in r.stderr, r.stderr
    r = run(*c, '--rounds', '1')
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(tmp_path/'c'/'history.csv')['round']) == [0, 1]

def test_accelerate_launch_runs_as_torchrun_does(tmp_path):
    "fastai's launcher: `accelerate launch --multi_gpu` starts torchrun's processes (gloo on a CPU), which draw one process's masks"
    args = ['draw', '--arch', 'lenet300', '--rounds', '1', '--epochs', '1', '--bs', '64', '--controls', '', '--n_images', '600']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    single = run(*args, '--path', str(tmp_path/'single'), env=env)
    assert single.returncode == 0, single.stderr
    acc = str(Path(sys.executable).parent/'accelerate')
    r = subprocess.run([acc, 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--main_process_port',
                        str(29100 + os.getpid() % 400), CLI, *args, '--path', str(tmp_path/'multi')],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'masks identical on 2 processes' in (tmp_path/'multi'/'log.txt').read_text()
    a, b = (Ticket.load(tmp_path/f/'tickets'/'round_01.safetensors') for f in ('multi', 'single'))
    for k in a.masks: assert torch.equal(a.masks[k], b.masks[k]), k

def test_two_processes_with_batchnorm_and_sync_bn_on_a_cpu(tmp_path):
    "A ResNet over 2 gloo processes: the ranks agree, and the masks nearly match one process's (each rank normalises its half batch); `--sync_bn` is refused on a CPU"
    args = ['draw', '--arch', 'resnet8', '--width', '4', '--rounds', '1', '--rate', '0.5', '--epochs', '1', '--bs', '64',
            '--lr', '1e-2', '--controls', '', '--n_images', '1200']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    assert run(*args, '--path', str(tmp_path/'single'), env=env).returncode == 0
    cmd = [TORCHRUN, '--nproc_per_node', '2', '--master_port', str(29100 + os.getpid() % 400), CLI, *args, '--path', str(tmp_path/'multi')]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'masks identical on 2 processes' in (tmp_path/'multi'/'log.txt').read_text()
    a, b = (Ticket.load(tmp_path/f/'tickets'/'round_01.safetensors') for f in ('multi', 'single'))
    same = sum(int((a.masks[k] == b.masks[k]).sum()) for k in a.masks)/sum(m.numel() for m in a.masks.values())
    assert 0.8 < same < 1, same          # not bit-identical (BatchNorm sees half batches), but the same ticket nearly
    bad = run(*args, '--sync_bn', '--device', 'cpu', '--path', str(tmp_path/'bad'), env=env)
    assert bad.returncode == 2 and "SyncBatchNorm runs on CUDA GPUs only" in bad.stderr and not (tmp_path/'bad').exists()

def _file_size_limit(nbytes):
    "For `preexec_fn`: a full disk for one process, without root: writing a file past `nbytes` fails with EFBIG"
    def limit():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write fails (EFBIG) instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit

@pytest.mark.parametrize('job', ['draw', 'stability'])
def test_full_disk_is_one_line_and_the_folder_resumes_to_the_same_bytes(tmp_path, job):
    "The disk fills up when the first ticket is written: one line naming the file, exit 2; once there is room, the same command finishes the folder as if nothing happened"
    args = [job, '--rounds', '1', '--epochs', '1', '--n', '600', '--bs', '64', '--seed', '2']
    args += ['--controls', ''] if job == 'draw' else ['--pairs', '1', '--ks', '0']
    full = subprocess.run([CLI, *args, '--path', str(tmp_path/'run')], capture_output=True, text=True, timeout=900,
                          preexec_fn=_file_size_limit(100_000))   # config, log and tables fit; a LeNet ticket (1 MB) does not
    assert full.returncode == 2, full.stderr[-3000:]
    assert full.stderr.startswith('lottery_fastai: error: could not write ') and len(full.stderr.splitlines()) == 1, full.stderr[-3000:]
    assert 'round_00.safetensors (File too large); the run folder is intact' in full.stderr, full.stderr
    assert not list((tmp_path/'run').rglob('*.safetensors')) and not list((tmp_path/'run').rglob('.*.tmp'))
    assert lock_holder(tmp_path/'run') is None
    again = run(*args, '--path', str(tmp_path/'run'))
    assert again.returncode == 0, again.stderr
    assert run(*args, '--path', str(tmp_path/'ref')).returncode == 0
    a, b = digests(tmp_path/'run'), digests(tmp_path/'ref')
    assert a.keys() == b.keys(), set(a) ^ set(b)
    assert [k for k in a if a[k] != b[k]] == []

def test_elastic_folder_takes_its_source_by_any_path_and_keeps_its_target_draw(tmp_path, monkeypatch):
    "The same source named relatively then absolutely opens the same elastic folder; moving round 1 after rounds 1 and 2 reuses the IMP draw at the target, which went further"
    monkeypatch.chdir(tmp_path)
    src = ['draw', '--arch', 'resnet20', '--width', '4', '--rounds', '2', '--epochs', '1', '--n', '600', '--bs', '64', '--controls', '']
    assert run(*src, '--path', 'src').returncode == 0
    el = ['elastic', '--to', 'resnet32', '--methods', 'elth', '--rounds', '1']
    first = run(*el, '--from', 'src')
    assert first.returncode == 0, first.stderr
    before = pd.read_csv(tmp_path/'src'/'elastic_resnet32'/'results.csv')
    r = run(*el, '--from', str(tmp_path/'src'))
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'src'/'elastic_resnet32'/'results.csv'), before)   # nothing retrained
    assert json.loads((tmp_path/'src'/'elastic_resnet32'/'config.json').read_text())['source'] == 'src'
    both = ['elastic', '--to', 'resnet32', '--methods', 'elth,imp', '--from', 'src', '--rounds']
    assert run(*both, '1,2').returncode == 0                                        # IMP at the target drawn to round 2
    r = run(*both, '1')
    assert r.returncode == 0, r.stderr
    res = pd.read_csv(tmp_path/'src'/'elastic_resnet32'/'results.csv')
    assert sorted(zip(res['round'], res.method)) == [(1, 'E-LTH'), (1, 'IMP at target'), (2, 'E-LTH'), (2, 'IMP at target')]
    assert list(pd.read_csv(tmp_path/'src'/'elastic_resnet32'/'imp_resnet32'/'history.csv')['round']) == [0, 1, 2]
    assert run(*src, '--seed', '1', '--path', 'src1').returncode == 0         # another draw is another source: refused
    r = run(*el, '--from', 'src1', '--path', str(tmp_path/'src'/'elastic_resnet32'))
    assert r.returncode == 2 and 'holds a run of elastic transfers with other settings (' in r.stderr and "source_draw: '" in r.stderr, r.stderr

def test_ctrl_c_is_one_line_and_the_same_command_resumes(tmp_path):
    "SIGINT (Ctrl-C) in a draw: one line, exit 130 as a shell reports it, no traceback; the same command finishes the draw"
    # four rounds: the signal lands while rounds are left, however loaded the machine (two rounds raced its end)
    args = ['draw', '--rounds', '4', *TINY[2:], '--path', str(tmp_path/'run')]
    # a pytest-xdist worker ignores SIGINT and a child inherits that (Python then installs no KeyboardInterrupt): the
    # draw gets a terminal's default disposition, as a user's shell gives it
    p = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert wait_for(lambda: (tmp_path/'run'/'steps.json').exists(), p), 'no round finished before the end'
    assert p.poll() is None, 'the draw finished before it could be interrupted'
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=300)[1]
    assert p.returncode == 130 and err.strip().splitlines() == ['lottery_fastai: interrupted: the same command resumes'], err
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(tmp_path/'run'/'history.csv')['round']) == [0, 1, 2, 3, 4] and lock_holder(tmp_path/'run') is None

def test_a_diverged_network_is_no_ticket(tmp_path):
    "At lr 1e6 the training loss stays finite (~1e30) but the predictions are NaN: the draw stops with one line, no ticket"
    r = run('draw', '--n', '640', '--arch', 'lenet300', '--epochs', '1', '--rounds', '1', '--controls', '', '--lr', '1e6',
            '--path', str(tmp_path/'x'))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and 'NaN or infinite in epoch 0' in lines[0], r.stderr
    assert not list((tmp_path/'x').glob('tickets/*')) and not list((tmp_path/'x').glob('trained_*'))

def test_elastic_with_elth_alone_trains_no_imp_at_the_target(tmp_path):
    "`elastic --methods elth` moved the tickets and then trained a whole IMP draw at the target that nothing read"
    r = run('draw', '--arch', 'resnet14', '--width', '4', '--rounds', '1', '--epochs', '1', '--n', '320', '--bs', '64',
            '--controls', '', '--path', str(tmp_path/'src'))
    assert r.returncode == 0, r.stderr
    r = run('elastic', '--from', str(tmp_path/'src'), '--to', 'resnet20', '--methods', 'elth', '--path', str(tmp_path/'e'))
    assert r.returncode == 0, r.stderr
    assert not (tmp_path/'e'/'imp_resnet20').exists() and 'IMP at resnet20 not trained' in r.stdout, r.stdout
    assert list(pd.read_csv(tmp_path/'e'/'results.csv').method) == ['E-LTH']

def test_a_learner_without_class_labels_is_refused_before_training():
    "Rounds are scored by cross-entropy and accuracy: a regression learner was scored that way, silently wrong"
    import lottery_fastai.draw   # noqa: F401  (patches Learner.draw)
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner
    from torch.utils.data import TensorDataset
    x, y = torch.randn(64, 1, 28, 28), torch.randn(64)
    dls = DataLoaders(DataLoader(TensorDataset(x, y), bs=32), DataLoader(TensorDataset(x, y), bs=32))
    learn = Learner(dls, make_model('lenet300', n_in=1, n_out=1, seed=0), loss_func=torch.nn.MSELoss())
    before = {k: v.clone() for k,v in learn.model.state_dict().items()}
    with pytest.raises(ValueError, match='targets are torch.float32 of shape'): learn.draw(rounds=1, n_epoch=1)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k,v in before.items())

def _transposed(path, prefix):
    "Swap the two dimensions of the first 2-D tensor named `prefix...` in a safetensors file's header (the bytes stay)"
    import struct
    b = path.read_bytes()
    n = struct.unpack('<Q', b[:8])[0]
    head = json.loads(b[8:8 + n])
    k = next(k for k,v in head.items() if k.startswith(prefix) and len(v.get('shape', ())) == 2)
    head[k]['shape'] = head[k]['shape'][::-1]
    s = json.dumps(head, separators=(',', ':')).encode()
    path.write_bytes(b[:8] + s + b' '*(n - len(s)) + b[8 + n:])

def _edited_config(f, **kw): f.write_text(json.dumps({**json.loads(f.read_text()), **kw}))

EDITS = {   # what a user did to a finished one-round draw, the job run next, and what its one line must say
    'rounds as a string': (lambda d: _edited_config(d/'config.json', rounds='2'), 'spend',
                           "config.json: field 'rounds' must be an integer, got '2'"),
    'an extra key': (lambda d: _edited_config(d/'config.json', note='mine'), 'spend',
                     "config.json is not the record the draw's tickets were drawn under"),
    'steps.json deleted, spend': (lambda d: (d/'steps.json').unlink(), 'spend',
                                  "steps.json is missing (the record of the draw's finished rounds)"),
    'steps.json deleted, draw': (lambda d: (d/'steps.json').unlink(), 'draw',
                                 'has no steps.json, the record of its finished steps'),
    'round 0 mask transposed': (lambda d: _transposed(d/'tickets'/'round_00.safetensors', 'mask.'), 'draw',
                                "round_00.safetensors: `masks`['1.weight'] has shape (784, 300)"),
    'trained state transposed': (lambda d: _transposed(d/'trained_01.safetensors', ''), 'draw',
                                 "trained_01.safetensors: tensor '1.weight' has shape (784, 300) there"),
    'round 1 mask transposed': (lambda d: _transposed(d/'tickets'/'round_01.safetensors', 'mask.'), 'spend',
                                "round_01.safetensors: `masks`['1.weight'] has shape (784, 300)"),
}

@pytest.fixture(scope='module')
def one_round_draw(tmp_path_factory):
    d = tmp_path_factory.mktemp('edited')/'draw'
    r = run('draw', *LENET_ONE, '--path', str(d))
    assert r.returncode == 0, r.stderr
    return d

LENET_ONE = ['--n', '320', '--arch', 'lenet300', '--epochs', '1', '--rounds', '1', '--controls', '']

@pytest.mark.parametrize('case', list(EDITS))
def test_a_hand_edited_run_file_is_one_line_naming_the_file_and_field(tmp_path, one_round_draw, case):
    "Each file a job reads back is checked: a wrong type, an unknown key, a missing record or a transposed tensor is one "
    "line naming the file (and the field or tensor), never a traceback, never another file's name; nothing is written"
    import shutil
    d = tmp_path/'draw'
    shutil.copytree(one_round_draw, d)
    edit, job, says = EDITS[case]
    edit(d)
    kept = lambda: {p: p.read_bytes() for p in d.rglob('*') if p.is_file() and p.name not in ('log.txt', 'config.json')}
    before, cfg = kept(), json.loads((d/'config.json').read_text())
    args = ['spend', '--recipes', 'vanilla', '--seeds', '0'] if job == 'spend' else ['draw', *LENET_ONE[:-4], '--rounds', '2', '--controls', '']
    r = run(*args, '--path', str(d))
    lines = [l for l in r.stderr.strip().splitlines() if 'Warning' not in l and 'warnings.warn' not in l]
    assert r.returncode == 2 and len(lines) == 1 and says in lines[0], r.stderr
    assert 'Traceback' not in r.stderr
    assert kept() == before
    after = json.loads((d/'config.json').read_text())   # a draw takes the new number of rounds before it fails
    assert {k: v for k,v in after.items() if k != 'rounds'} == {k: v for k,v in cfg.items() if k != 'rounds'}
    assert not (d/'spend').exists()
