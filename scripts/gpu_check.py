"""The GPU acceptance check of lottery_fastai: one command, one table, about 8 minutes on one GPU.

    bash scripts/gpu_check.sh             # on the GPU machine, from the repository root (makes .venv/ if needed)
    python scripts/gpu_check.py --tiny    # the same steps at toy size on a CPU: a check of the script itself

Whenever a GPU is lent, run it first, alone, and paste its table into the closing note. It measures, on
CIFAR-shaped synthetic data: a training epoch of a plain PyTorch loop, of this library and of the folder pipeline
(ResNet-20 and ResNet-18, batch 128 and 512, fp32 / bf16 + channels_last / the same compiled); the cost of the mask
upkeep per step; the peak GPU memory of a dense epoch and of a draw (dense round and one pruned round); and one epoch
of the Spending preset's ResNet-18, from which a 16-round IMP curve on CIFAR-100 is projected; and 2:4 tickets of linear
layers through `torch.sparse.to_sparse_semi_structured` against the same weights dense (convolutions have no such kernel
in PyTorch); and an epoch through DistributedDataParallel on one device (a process group of one, `ShardBatches`) against
the same epoch without it, and with `sync_bn` on a GPU. The table also goes to runs/gpu_check/gpu_check.csv."""
import argparse, math, os, sys, tempfile, time
from pathlib import Path
import torch, pandas as pd
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.vision.data import cifar_stats
from lottery_fastai.bench import bench_epoch, bench_mask_upkeep, synthetic_folder
from lottery_fastai.callbacks import option_cbs, ShardBatches
from lottery_fastai.data import tensor_dls
from lottery_fastai.draw import papers_sgd
from lottery_fastai.models import make_model
from lottery_fastai.desc import PRESETS

CIFAR_TRAIN = 45_000   # CIFAR-100's 50,000 training images, 9:1 split


def row(check, value, unit, ratio=math.nan, note=''):
    return dict(check=check, value=value, unit=unit, ratio=ratio, note=note)


def epochs(dev, tiny):
    "Epochs of plain PyTorch, the library and the folder pipeline, interleaved (`bench_epoch`)"
    gpu = dev.type == 'cuda'
    settings = ['fp32', 'bf16+channels_last', 'bf16+channels_last+compile'] if gpu else ['fp32', 'fp32+channels_last']
    df = bench_epoch(['resnet20'] if tiny else ['resnet20', 'resnet18'], [32] if tiny else [128, 512],
                     settings[:1] if tiny else settings, n=128 if tiny else 4096, reps=1 if tiny else 3, device=dev)
    return [row(f'epoch: {r.arch}, batch {r.bs}, {r.precision}, {r.variant}', r.img_per_s, 'images/s',
                r.ratio_to_plain, 'ratio: seconds / plain loop') for r in df.itertuples()]


def upkeep(dev, tiny):
    "A training step dense, with `MaskCallback`, and with torch's prune hooks (`bench_mask_upkeep`)"
    arch = 'resnet20' if tiny else 'resnet18'
    df = bench_mask_upkeep(make_model(arch, n_in=3, n_out=10, seed=0), (16 if tiny else 128, 3, 32, 32),
                           steps=5 if tiny else 30, reps=1 if tiny else 5, device=dev.type)
    return [row(f'mask upkeep: {arch}, batch {16 if tiny else 128}, fp32, {r.variant}', r.step_ms, 'ms a step',
                r.ratio_to_dense, 'ratio: step / dense step') for r in df.itertuples()]


def _dls(dev, n, bs):
    return tensor_dls(synthetic_folder(tempfile.mkdtemp(), n=n), bs=bs, stats=cifar_stats, device=dev)


def memory(dev, tiny):
    "Peak GPU memory of a dense epoch and of a draw (round 0 and one pruned round) of ResNet-18 at batch 128"
    bs = 32 if tiny else 128
    dls, out = _dls(dev, 128 if tiny else 2048, bs), []
    for what in ('dense epoch', 'draw, 2 rounds of 1 epoch'):
        if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
        learn = Learner(dls, make_model('resnet18', n_in=3, n_out=10, seed=0), metrics=accuracy, opt_func=papers_sgd)
        t0 = time.perf_counter()
        with learn.no_bar(), learn.no_logging():
            if what == 'dense epoch': learn.fit(1, 0.1)
            else: learn.draw(rounds=1, n_epoch=1, lr=0.01)
        peak = torch.cuda.max_memory_allocated()/2**20 if dev.type == 'cuda' else math.nan
        out.append(row(f'peak memory: resnet18, batch {bs}, {what}', peak, 'MiB',
                       note=f'{time.perf_counter() - t0:.1f} s'))
    return out


def preset_round(dev, tiny):
    "One epoch of the Spending preset's ResNet-18 (bf16 + channels_last on a GPU), projected to its 16-round IMP"
    d = PRESETS['spending'].draw
    bs, lr, wd, epochs = d.data.bs, d.train.learning_rate, d.train.wd, d.train.epochs
    n = 256 if tiny else 8192
    dls = _dls(dev, n, 32 if tiny else bs)
    opts = dict(precision='bf16', channels_last=True) if dev.type == 'cuda' else {}
    learn = Learner(dls, make_model('resnet18', n_in=3, n_out=100, seed=0), metrics=accuracy, opt_func=papers_sgd)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr, wd=wd, cbs=option_cbs(**opts))               # warm-up: kernels, caches
        t0 = time.perf_counter()
        learn.fit(1, lr, wd=wd, cbs=option_cbs(**opts))
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter() - t0
    per_epoch = t*CIFAR_TRAIN/len(dls.train_ds)
    rounds = 16 + 1                                                            # the dense round 0 and 16 pruned rounds
    return [row(f"preset 'spending' epoch: resnet18, batch {bs}, {'bf16+channels_last' if opts else 'fp32'}",
                per_epoch, 's a CIFAR epoch', note=f'measured on {len(dls.train_ds)} images, scaled to {CIFAR_TRAIN}'),
            row(f'projected: one IMP round ({epochs} epochs)', per_epoch*epochs/60, 'min'),
            row(f'projected: the 16-round curve ({rounds} trainings)', per_epoch*epochs*rounds/3600, 'h',
                note='one draw, one seed, no spends')]


def semi_structured(dev, tiny):
    "2:4 tickets of linear layers, as drawn by `prune(granularity='2:4')`: dense against the semi-structured kernel"
    if dev.type != 'cuda':
        return [row('2:4 linear: semi-structured kernel against dense', math.nan, '',
                    note='not measured on a CPU: torch.sparse.to_sparse_semi_structured needs a CUDA GPU')]
    from torch.sparse import to_sparse_semi_structured
    from torch.utils.benchmark import Timer
    from lottery_fastai.masks import prune
    out = []
    for n, bs in ((1024, 1024), (4096, 4096)):
        lin = torch.nn.Linear(n, n, bias=False).half().to(dev)
        w = lin.weight.detach() * prune({'w': lin.weight.detach().float().cpu()}, sparsity=0.5,
                                        granularity='2:4')['w'].to(dev)
        x = torch.randn(bs, n, dtype=torch.half, device=dev)
        try: ws = to_sparse_semi_structured(w)
        except Exception as e:   # a GPU or a build without the kernel: say so in the table
            out.append(row(f'2:4 linear {n}x{n}, batch {bs}, fp16', math.nan, '', note=f'no kernel: {e}'[:80]))
            continue
        f = torch.nn.functional.linear
        err = float((f(x, ws) - f(x, w)).abs().max())
        t = {k: Timer('f(x, v)', globals={'f': f, 'x': x, 'v': v}).blocked_autorange(min_run_time=1).median
             for k,v in (('dense', w), ('2:4', ws))}
        out.append(row(f'2:4 linear {n}x{n}, batch {bs}, fp16', 1e3*t['2:4'], 'ms', t['2:4']/t['dense'],
                       f'ratio: 2:4 / dense (dense {1e3*t["dense"]:.3f} ms); max |diff| {err:.1e}'))
    return out


def ddp(dev, tiny):
    "An epoch of ResNet-18 through DDP in a process group of one (its overhead), against the same epoch without DDP"
    import torch.distributed as dist
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', str(29500 + os.getpid() % 1000))
    dist.init_process_group('nccl' if dev.type == 'cuda' else 'gloo', rank=0, world_size=1)
    bs = 32 if tiny else 128
    dls = _dls(dev, 128 if tiny else 4096, bs)
    def epoch(cbs):
        learn = Learner(dls, make_model('resnet18', n_in=3, n_out=10, seed=0), opt_func=papers_sgd)
        with learn.no_bar(), learn.no_logging():
            learn.fit(1, 0.1, cbs=cbs)                                         # warm-up: kernels, DDP's buckets
            if dev.type == 'cuda': torch.cuda.synchronize()
            t0 = time.perf_counter()
            learn.fit(1, 0.1, cbs=cbs)
            if dev.type == 'cuda': torch.cuda.synchronize()
        return time.perf_counter() - t0
    variants = {'without DDP': lambda: [], 'DDP': lambda: [ShardBatches()]}
    # SyncBatchNorm runs on CUDA only; in a group of one it converts and trains, without anything to gather
    if dev.type == 'cuda': variants['DDP + sync_bn'] = lambda: [ShardBatches(sync_bn=True)]
    try: t = {k: epoch(cbs()) for k,cbs in variants.items()}
    finally: dist.destroy_process_group()
    where = 'GPU' if dev.type == 'cuda' else 'CPU process'
    return [row(f'DDP on one {where}: resnet18, batch {bs}, {k}', len(dls.train_ds)/v, 'images/s',
                v/t['without DDP'], 'ratio: seconds / without DDP') for k,v in t.items()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tiny', action='store_true', help='toy sizes, for a CPU: checks the script, measures nothing')
    ap.add_argument('--out', default='runs/gpu_check', help='folder of gpu_check.csv')
    a = ap.parse_args(argv)
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if dev.type != 'cuda' and not a.tiny:
        print('gpu_check: error: torch sees no GPU (use --tiny to check the script on a CPU)', file=sys.stderr)
        return 2
    hw = torch.cuda.get_device_name() if dev.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    tiny = ' (--tiny: toy sizes, not a measurement)' if a.tiny else ''
    print(f'{hw}, torch {torch.__version__}{tiny}', flush=True)
    rows, t0 = [], time.perf_counter()
    for part in (epochs, upkeep, memory, preset_round, semi_structured, ddp):
        t = time.perf_counter()
        rows += part(dev, a.tiny)
        print(f'{part.__name__}: {time.perf_counter() - t:.0f} s', flush=True)
    df = pd.DataFrame(rows)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    df.assign(hardware=hw, torch=torch.__version__, tiny=a.tiny).to_csv(Path(a.out)/'gpu_check.csv', index=False)
    with pd.option_context('display.max_colwidth', 80, 'display.width', 250, 'display.float_format', '{:.3f}'.format):
        print(df.to_string(index=False, na_rep=''))
    print(f'total {time.perf_counter() - t0:.0f} s; table in {Path(a.out)/"gpu_check.csv"}', flush=True)
    return 0


if __name__ == '__main__': sys.exit(main())
