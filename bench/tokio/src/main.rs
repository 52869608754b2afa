//! spindle-tokio-anchor: the scheduler shapes of the project's BENCH_SHAPES.md
//! on tokio's multi-thread runtime, so that spindle's figures can be divided by
//! tokio's measured on the same machine, in the same hour.
//!
//! Each shape does per iteration what `bench/scheduler_bench.cpp` does for
//! `<shape>/spindle/workers:<N>`: the same task counts, the same signal (the
//! tasks count down a shared latch and the last one wakes the outside thread,
//! which waits for it), the runtime built once before the timed loop.
//!
//! Output, one line per shape and worker count (ms per iteration):
//!   <shape>/tokio/workers:<N> median_ms=<x> min_ms=<y> max_ms=<z> reps=<K> iters=<M>
//! Lines starting with '#' are comments.

use std::hint::black_box;
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::Instant;

use tokio::runtime::Runtime;
use tokio::sync::oneshot;

// ---- shape sizes (BENCH_SHAPES.md) ----------------------------------------------

const NUM_SPAWN: usize = 10_000; // spawn_many_local, spawn_many_remote
const YIELD_TASKS: usize = 200; // yield_many: tasks
const NUM_YIELD: usize = 1_000; // yield_many: yields per task
const NUM_PINGS: usize = 1_000; // ping_pong: round trips
const CHAIN_DEPTH: u32 = 1_000; // chained_spawn: links after the head
const WORK_TASKS: u64 = 10_000; // parallel_work: tasks
const WORK_ROUNDS: u32 = 5_000; // parallel_work: xorshift rounds per task

const SHAPES: [&str; 6] = [
    "spawn_many_local",
    "spawn_many_remote",
    "yield_many",
    "ping_pong",
    "chained_spawn",
    "parallel_work",
];

// ---- the end-of-iteration signal ------------------------------------------------

/// Counts tasks down; the one that reaches zero wakes the thread that made the
/// latch (the benchmark's outside thread), which sleeps in `wait`. The same
/// contract as `spindle_bench::Latch` (an atomic counter and a binary
/// semaphore); here the sleep is `thread::park`, a futex as well.
struct Latch {
    remaining: AtomicUsize,
    done: AtomicBool,
    waiter: Thread,
}

impl Latch {
    fn new() -> Self {
        Latch {
            remaining: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            waiter: thread::current(),
        }
    }

    fn arm(&self, n: usize) {
        self.remaining.store(n, Ordering::Relaxed);
    }

    fn count_down(&self) {
        // AcqRel: every task's writes (parallel_work's sum) happen-before the
        // last decrement, which publishes them through `done`.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.store(true, Ordering::Release);
            self.waiter.unpark();
        }
    }

    fn wait(&self) {
        // park() may return early (a token left by an earlier unpark): loop.
        while !self.done.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

/// What the tasks of one shape share. Leaked once per shape run, so that tasks
/// hold a plain `&'static` (as the C++ tasks hold a raw pointer) and pay no
/// reference count per spawn.
struct Shared {
    latch: Latch,
    sum: AtomicU64,
}

fn new_shared() -> &'static Shared {
    Box::leak(Box::new(Shared {
        latch: Latch::new(),
        sum: AtomicU64::new(0),
    }))
}

// ---- parallel_work's task body --------------------------------------------------

/// ~10 us of CPU that the compiler cannot fold: each round depends on the last,
/// and the results are summed and checked.
fn xorshift_work(index: u64) -> u64 {
    let mut x = index | 1;
    for _ in 0..WORK_ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn expected_work_sum() -> u64 {
    (0..WORK_TASKS).fold(0u64, |s, i| s.wrapping_add(xorshift_work(i)))
}

// ---- the shapes: each returns one iteration as a closure -------------------------

/// A task on a worker spawns 10,000 empty tasks; each counts down.
fn spawn_many_local(rt: &Runtime) -> Box<dyn FnMut() + '_> {
    let shared = new_shared();
    Box::new(move || {
        shared.latch.arm(NUM_SPAWN);
        rt.spawn(async move {
            for _ in 0..NUM_SPAWN {
                tokio::spawn(async move { shared.latch.count_down() });
            }
        });
        shared.latch.wait();
    })
}

/// The outside thread spawns 10,000 empty tasks, then waits for every JoinHandle.
fn spawn_many_remote(rt: &Runtime) -> Box<dyn FnMut() + '_> {
    let mut handles = Vec::with_capacity(NUM_SPAWN);
    Box::new(move || {
        for _ in 0..NUM_SPAWN {
            handles.push(rt.spawn(async {}));
        }
        // The outside thread sleeps on each handle that has not finished yet
        // (block_on parks it until the handle's waker fires).
        rt.block_on(async {
            for h in handles.drain(..) {
                h.await.expect("spawn_many_remote: task failed");
            }
        });
    })
}

/// 200 tasks spawned from outside each yield 1,000 times, then count down.
fn yield_many(rt: &Runtime) -> Box<dyn FnMut() + '_> {
    let shared = new_shared();
    Box::new(move || {
        shared.latch.arm(YIELD_TASKS);
        for _ in 0..YIELD_TASKS {
            rt.spawn(async move {
                for _ in 0..NUM_YIELD {
                    tokio::task::yield_now().await;
                }
                shared.latch.count_down();
            });
        }
        shared.latch.wait();
    })
}

/// A task on a worker spawns 1,000 tasks; each makes two oneshots, spawns a
/// peer that receives on the first and sends on the second, sends on the
/// first, receives on the second, and counts down.
fn ping_pong(rt: &Runtime) -> Box<dyn FnMut() + '_> {
    let shared = new_shared();
    Box::new(move || {
        shared.latch.arm(NUM_PINGS);
        rt.spawn(async move {
            for _ in 0..NUM_PINGS {
                tokio::spawn(async move {
                    let (tx1, rx1) = oneshot::channel::<i32>();
                    let (tx2, rx2) = oneshot::channel::<i32>();
                    tokio::spawn(async move {
                        let v = rx1.await.expect("ping_pong: ping lost");
                        tx2.send(v).expect("ping_pong: pinger gone");
                    });
                    tx1.send(1).expect("ping_pong: ponger gone");
                    let v = rx2.await.expect("ping_pong: pong lost");
                    black_box(v);
                    shared.latch.count_down();
                });
            }
        });
        shared.latch.wait();
    })
}

/// One link of chained_spawn: the last counts down, the others spawn the next.
async fn chain_link(shared: &'static Shared, n: u32) {
    if n == 0 {
        shared.latch.count_down();
    } else {
        spawn_link(shared, n - 1);
    }
}

fn spawn_link(shared: &'static Shared, n: u32) {
    tokio::spawn(chain_link(shared, n));
}

/// The outside thread spawns the head; tasks 1..=1,000 spawn each other.
fn chained_spawn(rt: &Runtime) -> Box<dyn FnMut() + '_> {
    let shared = new_shared();
    Box::new(move || {
        shared.latch.arm(1);
        rt.spawn(chain_link(shared, CHAIN_DEPTH));
        shared.latch.wait();
    })
}

/// A task on a worker spawns 10,000 tasks of 5,000 xorshift rounds each; the
/// results are summed and checked against a serial computation.
fn parallel_work(rt: &Runtime) -> Box<dyn FnMut() + '_> {
    let shared = new_shared();
    let expected = expected_work_sum(); // before any timing
    Box::new(move || {
        shared.latch.arm(WORK_TASKS as usize);
        shared.sum.store(0, Ordering::Relaxed);
        rt.spawn(async move {
            for i in 0..WORK_TASKS {
                tokio::spawn(async move {
                    shared.sum.fetch_add(xorshift_work(i), Ordering::Relaxed);
                    shared.latch.count_down();
                });
            }
        });
        shared.latch.wait();
        let got = shared.sum.load(Ordering::Relaxed);
        if black_box(got) != expected {
            eprintln!("spindle-tokio-anchor: parallel_work: wrong sum {got}, expected {expected}");
            exit(1);
        }
    })
}

fn make_shape<'a>(name: &str, rt: &'a Runtime) -> Box<dyn FnMut() + 'a> {
    match name {
        "spawn_many_local" => spawn_many_local(rt),
        "spawn_many_remote" => spawn_many_remote(rt),
        "yield_many" => yield_many(rt),
        "ping_pong" => ping_pong(rt),
        "chained_spawn" => chained_spawn(rt),
        "parallel_work" => parallel_work(rt),
        _ => unreachable!("shape names are checked when parsing"),
    }
}

// ---- timing ------------------------------------------------------------------------

struct Options {
    workers: Vec<usize>,
    shapes: Vec<String>,
    reps: usize,
    min_time: f64,
    warmup: f64,
    iters: Option<u64>,
    drivers: bool,
}

/// Warm-up (at least 3 iterations and `warmup` seconds), which also sizes a
/// repetition: M iterations, enough for `min_time` seconds, unless `--iters`
/// fixes M. Returns ms per iteration of each of the K repetitions, and M.
fn measure(iteration: &mut dyn FnMut(), opts: &Options) -> (Vec<f64>, u64) {
    let start = Instant::now();
    let mut n: u64 = 0;
    while n < 3 || start.elapsed().as_secs_f64() < opts.warmup {
        iteration();
        n += 1;
    }
    let per_iteration = start.elapsed().as_secs_f64() / n as f64;
    let m = opts
        .iters
        .unwrap_or_else(|| ((opts.min_time / per_iteration).ceil() as u64).clamp(1, 1_000_000));
    let mut ms = Vec::with_capacity(opts.reps);
    for _ in 0..opts.reps {
        let t0 = Instant::now();
        for _ in 0..m {
            iteration();
        }
        ms.push(t0.elapsed().as_secs_f64() * 1e3 / m as f64);
    }
    (ms, m)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn build_runtime(workers: usize, drivers: bool) -> Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers);
    if drivers {
        builder.enable_all();
    }
    builder.build().unwrap_or_else(|e| {
        eprintln!("spindle-tokio-anchor: cannot build a runtime of {workers} workers: {e}");
        exit(1);
    })
}

// ---- command line ------------------------------------------------------------------

const USAGE: &str = "\
spindle-tokio-anchor [options]
  --workers LIST    worker counts, e.g. 1,2,4 (default 2)
  --shapes LIST     shapes to run (default all): spawn_many_local, spawn_many_remote,
                    yield_many, ping_pong, chained_spawn, parallel_work
  --reps K          timed repetitions per shape, median/min/max over them (default 5)
  --min-time S      seconds one repetition runs at least (default 0.5)
  --warmup S        seconds of warm-up before timing, also sizes a repetition (default 0.2)
  --iters M         exactly M iterations per repetition (no sizing)
  --no-drivers      no I/O and timer drivers (default: Builder::enable_all())
  --list            print the shape names and exit
Output: <shape>/tokio/workers:<N> median_ms=<x> min_ms=<y> max_ms=<z> reps=<K> iters=<M>
";

fn fail(msg: &str) -> ! {
    eprintln!("spindle-tokio-anchor: {msg}\n{USAGE}");
    exit(2);
}

fn parse_number<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| fail(&format!("{flag}: not a number: '{v}'")))
}

fn parse_args() -> Options {
    let mut opts = Options {
        workers: vec![2],
        shapes: SHAPES.iter().map(|s| s.to_string()).collect(),
        reps: 5,
        min_time: 0.5,
        warmup: 0.2,
        iters: None,
        drivers: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // --flag=value and --flag value both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| fail(&format!("{flag} wants a value")))
        };
        match flag.as_str() {
            "--workers" => {
                opts.workers = value()
                    .split(',')
                    .map(|w| parse_number::<usize>("--workers", w))
                    .collect();
                if opts.workers.iter().any(|&w| w == 0 || w > 4096) {
                    fail("--workers: counts are 1..4096");
                }
            }
            "--shapes" => {
                opts.shapes = value().split(',').map(str::to_string).collect();
                if let Some(bad) = opts.shapes.iter().find(|s| !SHAPES.contains(&s.as_str())) {
                    fail(&format!("--shapes: no shape '{bad}'"));
                }
            }
            "--reps" => {
                opts.reps = parse_number("--reps", &value());
                if opts.reps == 0 {
                    fail("--reps: at least 1");
                }
            }
            "--min-time" => opts.min_time = parse_number("--min-time", &value()),
            "--warmup" => opts.warmup = parse_number("--warmup", &value()),
            "--iters" => {
                let m: u64 = parse_number("--iters", &value());
                if m == 0 {
                    fail("--iters: at least 1");
                }
                opts.iters = Some(m);
            }
            "--no-drivers" => opts.drivers = false,
            "--list" => {
                for s in SHAPES {
                    println!("{s}");
                }
                exit(0);
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                exit(0);
            }
            _ => fail(&format!("unknown option '{arg}'")),
        }
    }
    opts
}

fn main() {
    let opts = parse_args();
    println!(
        "# spindle-tokio-anchor: tokio multi-thread runtime, drivers={}, reps={}, min_time={}s, warmup={}s",
        if opts.drivers { "all" } else { "none" },
        opts.reps,
        opts.min_time,
        opts.warmup
    );
    for &workers in &opts.workers {
        for shape in &opts.shapes {
            // A fresh runtime per shape, built before the timed loop.
            let rt = build_runtime(workers, opts.drivers);
            let (mut ms, m) = {
                let mut iteration = make_shape(shape, &rt);
                measure(&mut *iteration, &opts)
            };
            drop(rt);
            ms.sort_by(f64::total_cmp);
            println!(
                "{shape}/tokio/workers:{workers} median_ms={:.4} min_ms={:.4} max_ms={:.4} reps={} iters={m}",
                median(&ms),
                ms[0],
                ms[ms.len() - 1],
                ms.len()
            );
        }
    }
}
