"The real loaders, run on small folders built in exactly the layout that `untar_data` leaves under FASTAI_HOME/data."
import time
from pathlib import Path
import numpy as np, pytest, torch
from conftest import write_digits
import lottery_fastai.data as ld
from lottery_fastai.data import get_dls, split_idxs, PadCrop, FlipLR

def _cifar_layout(root, classes, n_train=10, n_test=4):
    write_digits(root/'train', classes, n_train)
    write_digits(root/'test', classes, n_test, start=n_train)

@pytest.mark.parametrize('name,stem,classes', [
    ('cifar10', 'cifar10', ['airplane', 'automobile', 'bird']),
    ('cifar100', 'cifar100', ['apple', 'aquarium_fish', 'baby', 'bear']),
])
def test_cifar_through_untar_data(fastai_home, name, stem, classes):
    _cifar_layout(fastai_home/'data'/stem, classes)
    dls = get_dls(name, bs=8, seed=0)
    assert dls.vocab == sorted(classes) and dls.c == len(classes)
    n = 10*len(classes)
    assert (len(dls.train_ds), len(dls.valid_ds), len(dls.test.dataset)) == (n - round(n*0.1), round(n*0.1), 4*len(classes))
    xb,yb = dls.one_batch()
    assert xb.shape == (8, 3, 32, 32) and yb.shape == (8,)
    # the papers' augmentation runs on the training loader only, before normalisation
    names = lambda dl: [type(t).__name__ for t in dl.after_batch.fs]
    assert {'PadCrop', 'FlipLR'} <= set(names(dls.train))
    assert names(dls.train).index('PadCrop') < names(dls.train).index('Normalize')
    vb,_ = dls.valid.one_batch(); vb2,_ = dls.valid.one_batch()
    assert torch.equal(vb, vb2)   # no randomness in validation batches
    # normalised with CIFAR statistics: a black pixel maps to -mean/std in each channel
    m,s = map(torch.tensor, ld.cifar_stats)
    assert torch.allclose(vb.amin(dim=(0, 2, 3)), -m/s, atol=1e-4)

def test_mnist_through_untar_data(fastai_home):
    root = fastai_home/'data'/'mnist_png'
    write_digits(root/'training', [str(i) for i in range(10)], 5, size=28, rgb=False)
    write_digits(root/'testing', [str(i) for i in range(10)], 2, size=28, rgb=False, start=5)
    dls = get_dls('mnist', bs=4)
    xb,_ = dls.one_batch()
    assert xb.shape == (4, 1, 28, 28) and dls.c == 10 and len(dls.test.dataset) == 20

@pytest.mark.parametrize('device_data', [False, True])
def test_tiny_imagenet_layout(fastai_home, device_data):
    root = fastai_home/'data'/'tiny-imagenet-200'
    wnids = ['n01443537', 'n01629819']
    for k,w in enumerate(wnids):
        write_digits(root/'train'/w, ['images'], 6, size=64, start=10*k)
    write_digits(root/'val', ['images'], 4, size=64)
    files = sorted((root/'val'/'images').iterdir())
    (root/'val'/'val_annotations.txt').write_text(''.join(f'{f.name}\t{wnids[i % 2]}\t0\t0\t63\t63\n' for i,f in enumerate(files)))
    dls = get_dls('tinyimagenet', bs=4, device_data=device_data)
    assert list(dls.vocab) == wnids and len(dls.test.dataset) == 4
    assert dls.one_batch()[0].shape == (4, 3, 64, 64)
    labels = dls.test.dataset.y if device_data else dls.test.dataset.tls[1]   # the device-held tensors, or the folder pipeline's
    assert [dls.vocab[int(t)] for t in labels] == [wnids[i % 2] for i in range(4)]

def test_offline_download_fails_fast_with_instructions(fastai_home, monkeypatch):
    monkeypatch.setattr(ld, '_reachable', lambda url, timeout=3.: False)
    t = time.time()
    with pytest.raises(ConnectionError, match=r'cifar10 is not on this machine.*data/cifar10'):
        get_dls('cifar10')
    assert time.time() - t < 5
    assert not (fastai_home/'data'/'cifar10').exists()   # nothing half-written

def test_reachable_is_bounded():
    t = time.time()
    assert not ld._reachable('http://127.0.0.1:9/nothing.tgz', timeout=1.)   # closed port on loopback
    assert time.time() - t < 5

@pytest.mark.parametrize('kwargs,match', [
    (dict(name='svhn'), '`name` must be one of'),
    (dict(name='mnist5k', bs=0), '`bs` must be a positive int'),
    (dict(name='mnist5k', bs=2.5), '`bs` must be a positive int'),
    (dict(name='mnist5k', valid_pct=0), '`valid_pct` must be a fraction'),
    (dict(name='mnist5k', valid_pct=1.2), '`valid_pct` must be a fraction'),
    (dict(name='folder'), '`path` is required'),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match): get_dls(**kwargs)

def test_bad_layout(tmp_path):
    write_digits(tmp_path/'train', ['a', 'b'], 3)
    with pytest.raises(FileNotFoundError, match="no 'test' folder"): get_dls('folder', path=tmp_path)
    (tmp_path/'test').mkdir()
    with pytest.raises(FileNotFoundError, match='holds no images'): get_dls('folder', path=tmp_path)
    with pytest.raises(FileNotFoundError, match='is not a folder'): get_dls('folder', path=tmp_path/'missing')
    write_digits(tmp_path/'test', ['c'], 2)
    with pytest.raises(ValueError, match='classes absent from the train part'): get_dls('folder', path=tmp_path)

def test_mnist5k_split_is_seeded_and_disjoint():
    a,b = get_dls('mnist5k', seed=3), get_dls('mnist5k', seed=3)
    assert torch.equal(a.valid.dataset.x, b.valid.dataset.x)
    assert not torch.equal(a.valid.dataset.x, get_dls('mnist5k', seed=4).valid.dataset.x)
    key = lambda dl: {hash(r.numpy().tobytes()) for r in dl.dataset.x.flatten(1)}
    assert not (key(a.train) & key(a.valid)) and not (key(a.train) & key(a.test)) and not (key(a.valid) & key(a.test))
    # the same seed gives the same order of training batches
    assert torch.equal(a.train.one_batch()[1], b.train.one_batch()[1])
