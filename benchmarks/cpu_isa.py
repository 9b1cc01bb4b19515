"""The instruction sets both peers of a comparison run with: the --isa option of
scripts/compare-torch and benchmarks/eval_torch.py, and what a PyTorch process actually uses.

--isa native (the default): each peer picks its own kernels for this CPU.
--isa avx2: both are held to what an AVX2-only CPU (the issue's AMD Zen 3) runs, so that an
AVX-512 machine can stand in for one. semigrad takes SEMIGRAD_ISA=avx2 (tensor/simd.hpp);
PyTorch takes oneDNN's documented ceiling (ONEDNN_MAX_CPU_ISA, spelled DNNL_MAX_CPU_ISA before
oneDNN 2.5; both are set), ATen's dispatch level ATEN_CPU_CAPABILITY=avx2; and both load
OpenBLAS with its Haswell kernels (OPENBLAS_CORETYPE), what OpenBLAS picks on an AVX2 CPU.
Every one of them is read once, when the library loads: apply() must run before `import torch`.

torch_report() says what the running PyTorch process computes with, as the libraries report it
themselves (not what was asked for), and check() stops a run whose restriction did not hold."""
import ctypes
import os
import sys
import tempfile

ENV = {
    "native": {},
    "avx2": {
        "SEMIGRAD_ISA": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "OPENBLAS_CORETYPE": "Haswell",
    },
}
CHOICES = tuple(ENV)


def isa_from_argv(argv):
    """--isa's value in argv (before argparse runs, since torch must not be loaded yet)."""
    value = "native"
    for i, arg in enumerate(argv):
        if arg == "--isa" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--isa="):
            value = arg[len("--isa="):]
    return value


def apply(isa):
    """Puts --isa's variables into this process's environment (children inherit them). An
    unknown value changes nothing: argparse then rejects it with the choices."""
    os.environ.update(ENV.get(isa, {}))


def _onednn_verbose_lines(torch):
    """oneDNN's verbose lines for one small convolution. oneDNN prints them with C stdio to file
    descriptor 1, so that descriptor is pointed at a temporary file for the call."""
    conv = torch.nn.Conv2d(1, 4, 2)
    x = torch.zeros(2, 1, 8, 8)
    with tempfile.TemporaryFile(mode="w+") as captured:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(captured.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), torch.no_grad():
                conv(x)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        captured.seek(0)
        return captured.read().splitlines()


def _openblas_core():
    """openblas_get_corename() of the OpenBLAS this process loaded (torch links libblas.so.3,
    Debian's alternative for it), or '?' if none is loaded."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libopenblas" in line}
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    return "?"


def torch_report(torch):
    """{'aten': ATen's dispatch level, 'onednn_isa': the ISA oneDNN says it runs at,
    'onednn_convolution': the kernel a convolution ran, 'openblas': OpenBLAS's kernels}.
    Call it once, early: oneDNN prints its ISA line only with the first verbose output."""
    aten = "?"
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            aten = line.split(":", 1)[1].strip()
    onednn_isa, convolution = "?", "?"
    for line in _onednn_verbose_lines(torch):
        fields = line.split(",")
        if line.startswith("onednn_verbose,info,cpu,isa:"):
            onednn_isa = line.split("isa:", 1)[1].strip()
        elif len(fields) > 4 and fields[1] == "exec" and fields[3] == "convolution":
            convolution = fields[4]
    return {"aten": aten, "onednn_isa": onednn_isa, "onednn_convolution": convolution,
            "openblas": _openblas_core()}


def describe(report):
    return (f"ATen {report['aten']}, oneDNN {report['onednn_isa']} (convolution "
            f"{report['onednn_convolution']}), OpenBLAS {report['openblas']} kernels")


def check(isa, report):
    """Exits with an error naming the library when --isa avx2 did not take effect in it."""
    if isa != "avx2":
        return
    problems = []
    if report["aten"] != "AVX2":
        problems.append(f"ATen dispatches at {report['aten']}")
    if report["onednn_isa"] != "Intel AVX2" or "avx512" in report["onednn_convolution"]:
        problems.append(f"oneDNN runs {report['onednn_isa']} ({report['onednn_convolution']})")
    if report["openblas"] != "Haswell":
        problems.append(f"OpenBLAS runs its {report['openblas']} kernels")
    if problems:
        sys.exit("error: --isa avx2 did not take effect: " + "; ".join(problems) +
                 " (the variables must be set before torch is imported)")
