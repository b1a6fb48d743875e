# SPDX-License-Identifier: GPL-3.0-or-later
"""What the benchmarks in bench/ share: one percentile, the command line
options bench/run passes (--json FILE, --quick), and the machine-readable
results it collects.

A benchmark keeps printing its markdown section on stdout; everything it
prints through Results (tables, paragraphs) and every figure it records
also goes into the JSON file given with --json, which bench/run turns into
docs/PERFORMANCE.md:

    res = Results("monitor", args)
    res.figure("latency", "sysfs change -> fault raised", "ms", samples=lat,
               goal=goal("p99", "<=", 120))
    res.table(["figure", "p50"], [["...", "1 ms"]])
    res.text("Latency is from ...")
    res.write()

A figure is one number the summary table shows: a distribution (samples:
its median and p99 are reported) or a single value (value=).  Its goal, when
it has one, names the statistic it judges, so "p99 <= 20 ms" and "median <=
2 ms" are both explicit in the document.
"""
import json
import math
import os
import statistics
import subprocess
import time

STATS = ("median", "p99", "value")
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def c_tool(name, libs=("libnetconf2", "libyang")):
    """Builds bench/NAME.c (a C peer: libnetconf2's client) once, into this
    tree's build directory, again when the source is newer; returns its
    path.  A shared path (it was /tmp) is overwritten by other checkouts'
    versions."""
    out = os.path.join(BENCH_DIR, "..", "build", "bench", name)
    src = os.path.join(BENCH_DIR, name + ".c")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + list(libs), check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run(["cc", "-O2", "-pthread", "-o", out, src] + flags, check=True)
    return out


def write_test_node(path, n, name="vm-%04d"):
    """A libvirt test driver node file (test://PATH) with n small running
    domains named name % i, UUIDs %08x-0000-4000-8000-%012x of i."""
    with open(path, "w") as f:
        f.write("<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1"
                "</sockets><cores>8</cores><threads>2</threads><active>16</active></cpu>"
                "<memory>67108864</memory>")
        for i in range(n):
            f.write(("<domain type='test'><name>%s</name><uuid>%%08x-0000-4000-8000-%%012x"
                     "</uuid><memory unit='MiB'>16</memory><vcpu>1</vcpu><os><type>hvm"
                     "</type></os></domain>") % (name % i) % (i, i))
        f.write("</node>")


def pct(values, q):
    """Nearest-rank percentile (q in 0..1): the smallest sample that at
    least a fraction q of the samples do not exceed.  With fewer than 100
    samples the p99 is the maximum."""
    v = sorted(values)
    if not v:
        raise ValueError("no samples")
    return v[max(0, min(len(v) - 1, math.ceil(q * len(v)) - 1))]


def goal(stat, op, value, text=None):
    """A goal on one statistic of a figure: goal("p99", "<=", 20)."""
    if stat not in STATS or op not in ("<=", ">="):
        raise ValueError("bad goal %r %r" % (stat, op))
    return {"stat": stat, "op": op, "value": value, "text": text}


def add_args(ap):
    """The options every benchmark takes from bench/run."""
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--quick", action="store_true",
                    help="fewer rounds and smaller sizes (a smoke run, not the reference figures)")
    return ap


class Results:
    def __init__(self, bench, args, params=None):
        self.bench = bench
        self.path = getattr(args, "json", None)
        self.quick = bool(getattr(args, "quick", False))
        self.params = dict(params or {})
        self.figures = []
        self.blocks = []  # ("table", {...}, peer) or ("text", str, peer), in print order
        self.t0 = time.time()

    def figure(self, key, label, unit, samples=None, value=None, goal=None, section=None,
               summary=True):
        """Records one figure.  samples: a distribution (median, p99, n);
        value: one number.  summary: listed in the document's summary table
        (every figure with a goal is).  Returns the figure (a dict)."""
        f = {"key": key, "label": label, "unit": unit, "goal": goal, "section": section,
             "summary": bool(summary or goal)}
        if samples is not None:
            s = [float(x) for x in samples]
            f.update(n=len(s), median=statistics.median(s), p99=pct(s, 0.99),
                     min=min(s), max=max(s))
        elif value is not None:
            f.update(value=float(value))
        else:
            raise ValueError("figure %s: samples or value" % key)
        self.figures.append(f)
        return f

    def table(self, header, rows, title=None, peer=False):
        """Prints a markdown table (with an optional ### title) and keeps it.
        peer: it compares with a peer (the document shows it with the peers)."""
        rows = [[str(c) for c in r] for r in rows]
        if title:
            print("### %s\n" % title)
        print(render_table(header, rows))
        print()
        self.blocks.append(("table", {"title": title, "header": list(header), "rows": rows},
                            peer))

    def text(self, s, peer=False):
        """Prints a paragraph and keeps it."""
        print(s)
        print()
        self.blocks.append(("text", s, peer))

    def write(self):
        if not self.path:
            return
        doc = {
            "bench": self.bench,
            "quick": self.quick,
            "params": self.params,
            "started": self.t0,
            "seconds": time.time() - self.t0,
            "figures": self.figures,
            "blocks": [{"kind": k, "body": b, "peer": p} for k, b, p in self.blocks],
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
        os.replace(tmp, self.path)


def render_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
