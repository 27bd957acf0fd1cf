"""A long session in one process: memory and latency over many generate / edit / undo cycles.

    python benchmarks/long_session.py [--cycles 1000] [--threads 1] [--model DIR] [--length 120]
                                      [--samples 1] [--prompts 0] [--edit-guidance N] [--tracemalloc]
                                      [--json out.json]

One cycle, as in the app: generate (a new prompt each cycle unless --prompts N cycles through N;
Document.set_samples), edit one pose-code group over a few steps of the current sample
(Document.replace_motion), then undo it (replace_motion with the previous motion, checked to be
restored). Uses the built-in model unless --model. Every 50 cycles prints the resident memory
(RSS, from /proc/self/statm) and the median cycle time of those 50; at the end the RSS growth
from cycle 100 to the last, and the median cycle time of the first 100 against the last 100.
--tracemalloc also prints the Python allocations that grew most from cycle 100 to the end
(slower). Prints figures, never asserts.
"""

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core import posecodes as pc  # noqa: E402
from core.document import Document  # noqa: E402
from core.motion import Edit  # noqa: E402
from core.pipeline import Pipeline

VERBS = ["walks", "runs", "jumps", "waves", "kicks", "turns", "crouches", "spins", "stumbles", "dances"]
MANNER = ["slowly", "quickly", "happily", "carefully", "angrily", "proudly", "lazily", "nervously"]
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except OSError:            # no /proc: the peak instead (KiB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def prompt(i: int, n_prompts: int) -> str:
    k = i % n_prompts if n_prompts else i
    return f"a person {VERBS[k % 10]} {MANNER[(k // 10) % 8]} and then stops, take {k // 80}"


def random_edit(motion, rng) -> Edit:
    S = motion.n_steps
    g = pc.GROUPS[int(rng.integers(len(pc.GROUPS)))]
    start = int(rng.integers(0, max(1, S - 6)))
    end = min(S, start + int(rng.integers(2, 7)))
    current = set(motion.code_ids()[start:end, g.index].tolist())
    choices = [c for c in g.code_ids if c not in current] or list(g.code_ids)
    return Edit(int(rng.choice(choices)), start, end)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", help="model folder (default: the built-in model)")
    ap.add_argument("--length", type=int, default=120, help="frames generated per sample (default 120)")
    ap.add_argument("--samples", type=int, default=1, help="samples per generate (default 1)")
    ap.add_argument("--prompts", type=int, default=0, help="cycle through N prompts (default 0: a new one each cycle)")
    ap.add_argument("--edit-guidance", type=int, help="Pipeline.edit_guidance iterations (default: the pipeline's)")
    ap.add_argument("--every", type=int, default=50, help="report every N cycles (default 50)")
    ap.add_argument("--tracemalloc", action="store_true", help="show the allocations that grew (slower)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start_rss = rss_mb()
    pipe = Pipeline(args.model)
    if args.edit_guidance is not None:
        pipe.edit_guidance = args.edit_guidance
    doc = Document(n_samples=args.samples, length=args.length)
    rng = np.random.default_rng(0)
    print(f"model {pipe.model_dir.name}, precision {pipe.precision}, {args.threads} thread(s), "
          f"{args.samples} x {args.length} frames; RSS {start_rss:.0f} MB before the model, {rss_mb():.0f} MB after")
    print(f"{'cycle':>6} {'RSS MB':>8} {'median s':>9} {'gen s':>7} {'edit s':>7}")
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(10)
    snap = None
    times, gens, edits, rows, rss_at = [], [], [], [], {}
    for i in range(1, args.cycles + 1):
        t0 = time.perf_counter()
        p = prompt(i, args.prompts)
        doc.set_settings(prompt=p)
        doc.set_samples(pipe.generate(p, n_samples=args.samples, seed=i, length=args.length))
        t1 = time.perf_counter()
        before = doc.motion
        doc.replace_motion(pipe.edit(before, [random_edit(before, rng)]))
        t2 = time.perf_counter()
        undone = doc.replace_motion(before)                 # undo
        assert doc.motion is before and undone is not before
        times.append(time.perf_counter() - t0)
        gens.append(t1 - t0)
        edits.append(t2 - t1)
        if i == min(100, args.cycles):
            gc.collect()
            rss_at[i] = rss_mb()
            if args.tracemalloc:
                snap = tracemalloc.take_snapshot()
        if i % args.every == 0 or i == args.cycles:
            gc.collect()
            rss = rss_at[i] = rss_mb()
            n = i % args.every or args.every
            row = {"cycle": i, "rss_mb": rss, "median_s": statistics.median(times[-n:]),
                   "generate_s": statistics.median(gens[-n:]), "edit_s": statistics.median(edits[-n:])}
            rows.append(row)
            print(f"{i:6d} {rss:8.1f} {row['median_s']:9.3f} {row['generate_s']:7.3f} {row['edit_s']:7.3f}",
                  flush=True)
    k = min(100, len(times))
    first, last = statistics.median(times[:k]), statistics.median(times[-k:])
    a = min(100, args.cycles)
    summary = {"cycles": args.cycles, "threads": args.threads, "rss_mb_at": {str(c): v for c, v in rss_at.items()},
               "rss_growth_mb": rss_at[args.cycles] - rss_at[a], "rss_from": a,
               "median_first_s": first, "median_last_s": last, "latency_ratio": last / first,
               "text_cache": len(pipe._cond_cache), "rows": rows}
    print(f"RSS: {rss_at[a]:.1f} MB at cycle {a}, {rss_at[args.cycles]:.1f} MB at cycle {args.cycles} "
          f"({summary['rss_growth_mb']:+.1f} MB, {summary['rss_growth_mb'] * 1024 / max(1, args.cycles - a):+.1f} KB "
          f"per cycle)")
    print(f"cycle time (median): first {k} {first:.3f} s, last {k} {last:.3f} s (x{last / first:.2f}); "
          f"text-condition cache {len(pipe._cond_cache)} prompts")
    if args.tracemalloc:
        top = tracemalloc.take_snapshot().compare_to(snap, "traceback")[:10]
        print(f"Python allocations grown most since cycle {a}:")
        for stat in top:
            print(f"  {stat.size_diff / 1024:+9.1f} KB {stat.count_diff:+7d} blocks  {stat.traceback.format()[-2:]}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
