import os, tempfile
from pathlib import Path
import numpy as np, pytest
from PIL import Image

# Never read or write the user's ~/.fastai from the tests (scripts/test.sh also sets this).
os.environ.setdefault('FASTAI_HOME', tempfile.mkdtemp(prefix='lottery_fastai_home_'))

@pytest.fixture
def fastai_home(tmp_path, monkeypatch):
    "A fresh, empty FASTAI_HOME for one test (fastai caches its config, so the cache is cleared around the test)"
    from fastai.data.external import fastai_cfg
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'fastai_home'))
    fastai_cfg.cache_clear()
    yield tmp_path/'fastai_home'
    fastai_cfg.cache_clear()

def write_digits(folder, classes, n, size=32, rgb=True, start=0):
    "Save `n` real MNIST-5k digits per class as PNGs under `folder/<class>/` (class names map to digits by position)"
    from lottery_fastai.data import load_mnist5k
    x,y = load_mnist5k()
    for k,c in enumerate(classes):
        d = Path(folder)/c; d.mkdir(parents=True, exist_ok=True)
        for j,i in enumerate((y == k % 10).nonzero().flatten()[start:start+n].tolist()):
            im = np.pad(x[i].numpy(), (size-28)//2)
            Image.fromarray(np.stack([im]*3, -1) if rgb else im).save(d/f'{c}_{j}.png')

LONGEST = ('test_readme_main_job', 'test_the_readme_shell_block_runs_in_order', 'test_gpu_acceptance_script', 'test_kill_and_resume_of_the_jobs_that_read_a_draw', 'test_local_executor_matches')

def pytest_collection_modifyitems(config, items):
    "The longest tests first: two xdist workers then finish together instead of one waiting for the other's last long test"
    items.sort(key=lambda it: not it.name.startswith(LONGEST))

def pytest_configure(config):
    config.addinivalue_line('markers', "slow: a run at its full size, skipped unless LOTTERY_SLOW=1 (each has a fast version that CI runs)")

def pytest_runtest_setup(item):
    if item.get_closest_marker('slow') and os.environ.get('LOTTERY_SLOW') != '1':
        pytest.skip('slow: set LOTTERY_SLOW=1 to run it at its full size')
