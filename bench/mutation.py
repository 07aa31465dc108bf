"""
The mutation run: mutmut puts small bugs into the core's code one at a time (an operator flipped, a constant
changed, an argument dropped) and runs, for each, the tests of that module that reach the mutated function. A
mutant that no test notices is a bug the tests would let through. Not in CI: minutes per module.

    pip install -r requirements-dev.txt
    python -m bench.mutation                     # every module of TARGETS, one after the other
    python -m bench.mutation schedules plan      # some of them
    python -m bench.mutation --list              # the modules, their functions and their tests
    python -m bench.mutation plan --survivors    # the last run's survivors of plan again, after adding tests

Each module runs in a project folder of its own, out/mutation/<module>/ (links to the repository's files and a
setup.cfg naming the module's file and test files), so that a mutant runs only its module's tests, and runs again
from scratch. Prints, per module, the mutants killed of those that are not equivalent (EQUIVALENT: a mutant
that changes no behaviour, with the reason) and each survivor's diff; writes out/mutation/<module>.json.
docs/testing.md has the scores and the command's time.
"""

import difflib
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.config import ConfigError, Setting, parse_args
from lab.settings import run_script

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "out" / "mutation"
# what a module's tests need beside the code: the repository's top-level files and folders a test reads
LINKED = ("tests", "configs", "pytest.ini", "results", "results_long")
MUTMUT = str(Path(sys.executable).parent / "mutmut")  # its command, not `python -m mutmut`, which it warns against
# mutmut's statuses that mean a test noticed the mutant: a failure, or a run past its time (an endless loop)
KILLED = ("killed", "timeout", "segfault")


@dataclass
class Target:
    path: str  # the file mutated
    functions: tuple  # which of its functions, as mutmut names them: x_<function>, xǁ<Class>ǁ<method>; globs
    tests: tuple  # the test files that mutmut maps to the functions they reach
    # tests left out: slow ones that would run again for nearly every mutant (a training run, torchrun, every
    # suite's table), whose parts have tests of their own
    deselect: tuple = ()
    # lines left unmutated (regular expressions, mutmut's do_not_mutate_patterns): what the module's job is not
    unmutated: tuple = ()


TARGETS = {
    "schedules": Target("schedules.py", ("*",), ("tests/test_schedules.py",)),
    "model": Target("model.py", ("x_flops_per_token", "xǁGPTǁ_init_weights"), ("tests/test_model.py",)),
    "data": Target("lab/data.py", ("*",), ("tests/lab/test_data.py",), ("tests/lab/test_data.py::"
                   "test_the_spread_validation_set_scores_a_trained_model_as_the_whole_split_does",)),
    # a data folder's checks: meta.json, its shards, nanoGPT's folders and meta.pkl, the vocabulary, the fingerprint
    # (not its test of train.py in a subprocess run in another folder, where mutmut's code finds no setup.cfg)
    "shards": Target("lab/shards.py", ("*",), ("tests/lab/test_shards.py",),
                     ("tests/lab/test_shards.py::test_the_paper_config_without_its_data_names_slimpajama",)),
    "evaluation": Target("lab/evaluation.py", ("*",), ("tests/lab/test_evaluation.py",)),
    "swa": Target("swa.py", ("xǁSWAǁ*", "xǁEMAǁ*", "x__fold", "x_merge_weights", "x_average_checkpoints"),
                  ("tests/test_swa.py",)),
    # the memory plan: the estimate, its parts and the micro-batch that fits (not the dry run's printing); not the
    # tests that compile a model to count what inductor saves (10 to 30 s each, for every mutant of every formula):
    # the compiled formulas are written out by hand in another
    "plan": Target("lab/plan.py", ("x_activation_*", "x_attention_*", "x_num_params", "x_matmul_weights",
                                   "x_rms_norm_bytes", "x_eager_block_bytes", "x_compiled_*",
                                   "x_logits_workspace_bytes",
                                   "x_optimizer_bytes_per_param", "x_fsdp_unsharded_bytes", "x_fuses_loss",
                                   "x_memory_estimate", "x_fitting_micro_batch"), ("tests/lab/test_plan.py",),
                   ("tests/lab/test_plan.py::test_compiled_activation_bytes_are_what_inductors_partitioner_saves",)),
    # safe loading: the metadata unpickler, the reader that uses it, load's refusals
    "checkpoint": Target("lab/checkpoint.py", ("xǁ_MetadataUnpicklerǁ*", "xǁSafeReaderǁ*", "x_load"),
                         ("tests/lab/test_checkpoint.py",),
                         ("tests/lab/test_checkpoint.py::test_fsdp_on_three_processes_resumes_under_ddp_on_two_and_on_"
                          "one_process", "tests/lab/test_checkpoint.py::test_each_of_three_fsdp_processes_reads_only_"
                          "its_own_shards")),
    # the loss laws and their fit; the validation protocol (what runs share, seed noise, cells, the band);
    # predict.py's own logic: the recommended fit's runs and cache, the asked schedule, the best cooldown
    "laws": Target("lab/laws.py", ("*",), ("tests/lab/test_laws.py",)),
    "streams": Target("lab/streams.py", ("*",), ("tests/lab/test_streams.py",)),
    "validation": Target("lab/validation.py", ("*",), ("tests/lab/test_validation.py",)),
    "predict": Target("predict.py", ("x_recipe_runs", "x_committed_runs", "x_fingerprint", "x_recommended_fits",
                                     "x_user_fits", "x_describe", "x_asked_schedule", "x_optimal_cooldown",
                                     "x_train_command", "x_split_repeated", "x_outside_the_fit"),
                      ("tests/test_predict.py",)),
    # the resume guards: what a resume or branch may change, its data, its checkpoint, its out_dir and config.json,
    # init_from=auto; not the tests that train runs (seconds each: the guards' own tests cover each guard)
    "rundir": Target("lab/rundir.py", ("x_changed_settings", "x_first_step_with_other_lr", "x_check_changes",
                                       "x_load_start", "x_check_same_data", "x_write_config", "x_claim_out_dir",
                                       "x_truncate_metrics", "x_start_or_resume", "x_check_started_from",
                                       "x_resolve_auto", "x_starting_point"), ("tests/lab/test_rundir.py",),
                     tuple(f"tests/lab/test_rundir.py::test_{name}" for name in (
                         "resume_refuses_every_change_of_what_the_run_is_in_one_line",
                         "resume_may_extend_a_constant_run_and_change_bookkeeping_and_keeps_a_history",
                         "resume_refuses_a_schedule_change_that_rewrites_steps_already_taken",
                         "a_branch_may_change_the_schedule_but_not_the_data_stream_without_saying_so",
                         "resume_and_branch_know_their_data_by_its_fingerprint"))),
    # the figures' data: what each line, error bar and bar draws, its label, colour and style (each figure's tests:
    # not those that draw and save every figure, seconds each); not how a figure looks: lines of its size, panels,
    # titles, axis labels, zoom, legend, grid, line widths and transparency
    "plot": Target("plot.py", ("x_color", "x_shade_of", "x_curve", "x_lr_curves", "x_fig_c*"), ("tests/test_plot.py",),
                   tuple(f"tests/test_plot.py::test_{name}" for name in (
                       "every_figure_and_the_summary_from_synthetic_runs",
                       "only_figures_plot_py_wrote_are_replaced_or_deleted",
                       "runs_of_other_data_are_refused_and_runs_of_unknown_data_counted")),
                   (r"plt\.subplots\(", r"^\s*(finish|plain_log_ticks)\(",
                    r"\.(set|set_ylabel|set_ylim|set_xscale|suptitle|legend|grid|set_minor_formatter)\(",
                    r"^\s*(lw|alpha|capsize|rotation|ha)=", r"styles = iter\(", r"axhline\(0,")),
    "runs": Target("lab/runs.py", ("*",), ("tests/lab/test_runs.py",)),
    # the rows whose comparisons end in a verdict: C2 (lr_rows), C4 (shape_rows), C7 (schedulefree_rows)
    "summary": Target("lab/summary.py", ("x_lr_rows", "x_shape_rows", "x_schedulefree_rows"),
                      ("tests/lab/test_summary.py",), ("tests/lab/test_summary.py::test_every_claim_has_its_numbers",)),
}

# mutant -> why it changes no behaviour (mutmut 3.8.1's names; the number counts the function's mutants in order)
AT_THE_SEAM = "at the step where two phases meet both give 1.0 (the warmup's end, the decay at t = 0)"
EQUIVALENT = {
    "schedules.x_cosine__mutmut_2": AT_THE_SEAM, "schedules.x_linear__mutmut_2": AT_THE_SEAM,
    "schedules.x_wsd__mutmut_2": AT_THE_SEAM, "schedules.x_wsd__mutmut_9": AT_THE_SEAM,
    "schedules.x_validate_schedule__mutmut_12": "get_close_matches' n: the hint shows only the best match, close[0]",
    "schedules.x_validate_schedule__mutmut_14": "get_close_matches' n: the hint shows only the best match, close[0]",
    "schedules.x__shape_from_name__mutmut_21": "get_close_matches' n: the hint shows only the best match, close[0]",
    "schedules.x__shape_from_name__mutmut_23": "get_close_matches' n: the hint shows only the best match, close[0]",
    "schedules.x_last_iterate_bound__mutmut_5": "multipliers as given (ints stay ints): numpy's true division gives "
                                                "the same floats while the sums are exact",
    "schedules.x_last_iterate_bound__mutmut_7": "multipliers as given (ints stay ints): numpy's true division gives "
                                                "the same floats while the sums are exact",
    "schedules.x_lr_multipliers__mutmut_5": "min's value for no steps, 0 or 1: neither is negative",
    "model.xǁGPTǁ_init_weights__mutmut_12": "mean=0.0 dropped: nn.init.normal_'s default mean is 0.0",
    "model.xǁGPTǁ_init_weights__mutmut_21": "mean=0.0 dropped: nn.init.normal_'s default mean is 0.0",
    **{f"lab.checkpoint.xǁSafeReaderǁread_metadata__mutmut_{n}": "the rank-local metadata path (DCP's fallback when "
       "the global .metadata fails): this repository's checkpoints have only the global one, so either read fails"
       for n in (2, 3, 4, 5)},
    "lab.checkpoint.xǁSafeReaderǁread_metadata__mutmut_18": "getattr without its default: DCP's Metadata declares "
                                                            "storage_meta with a default (None), so it is always found",
    **{f"lab.plan.x_logits_workspace_bytes__mutmut_{n}": "the forward's peak (6 bytes a score in bf16, 4 in fp32, "
       "8 at most in any of these) never exceeds the backward's 8: max() returns the backward's"
       for n in (5, 8, 9, 10, 11, 12, 14)},
    **{f"lab.data.xǁDatasetǁtrain_windows__mutmut_{n}": "np.arange's default integer is int64 (numpy 2, which the "
       "requirements ask for)" for n in (7, 10)},
    "lab.data.xǁDatasetǁval_windows__mutmut_19": "replace=None: numpy's choice tests replace for truth, None is False",
    **{f"lab.data.xǁDatasetǁ_shard_windows__mutmut_{n}": "np.array of Python ints is int64 without dtype=np.int64 "
       "(numpy 2)" for n in (4, 6)},
    "lab.data.xǁDatasetǁ_shard_windows__mutmut_7": "/ for //, then cast to int64: truncation equals floor division "
                                                   "for counts >= 0",
    "swa.x_average_checkpoints__mutmut_5": "default weights 2.0 each: normalised, share 2 / 2j is exactly 1 / j",
    "lab.evaluation.x_evaluate__mutmut_53": "world_size >= 1: sum_over_processes is a no-op for one process",
    **{f"lab.plan.x_memory_estimate__mutmut_{n}": "parallelism's default misspelt: anything but 'fsdp' is DDP"
       for n in (6, 7)},
    **{f"lab.plan.x_fuses_loss__mutmut_{n}": "parallelism's default misspelt: anything but 'fsdp' is DDP"
       for n in (3, 4)},
    "lab.runs.x_verdict__mutmut_21": "|mean| <= half or < half: they differ only when the mean gap equals t * s / "
                                     "sqrt(n) to the last bit",
    "lab.validation.x_score__mutmut_78": "k[1] for k[0] where k[0] == k[1]: a stream whose data order is its seed",
    **{f"lab.streams.x_seed_noise__mutmut_{n}": "a seed group's runs have one setting, hence one cell: group[1]'s "
       "are group[0]'s" for n in (7, 14)},
    "lab.streams.x_seed_noise__mutmut_4": "> or >= UNSTABLE: they differ only when the mean |relative difference| "
                                             "is 0.10 to the last bit",
    "lab.laws.x_fit_law__mutmut_1": "fit_from 0 or 1 by default: a run's val losses are at steps >= 1 (none at "
                                    "step 0, before any update)",
    **{f"lab.laws.x_fit_law__mutmut_{n}": "scipy's minimize without bounds or constraints defaults to BFGS, and reads "
       "the method's name in any case" for n in (54, 59, 62)},
    "lab.laws.x_objective__mutmut_32": "1e+30 is 1e30",
    **{f"lab.laws.x_schedule_lrs__mutmut_{n}": "learning_rates gives floats (lr, a float setting, times float "
       "multipliers): the array is float64 without dtype=float" for n in (2, 4)},
    **{f"plot.x_curve__mutmut_{n}": "steps logged as ints stay ints without dtype=float: the same points drawn"
       for n in (14, 16)},
    "plot.x_fig_c1__mutmut_29": "length <= or < cycle: a length equal to its cycle is drawn matched ('-') before",
    "plot.x_fig_c3__mutmut_8": "plt.close(None) closes the current figure: the one just made",
    "plot.x_fig_c8_scatter__mutmut_17": "markers 'osD^v<>ph*' repeated 11 times or 10: the same for 100 sizes",
    "plot.x_fig_c8_scatter__mutmut_27": "ls='' dropped: a marker-only format ('o', 's', ...) draws no line already",
    **{f"plot.x_fig_c9__mutmut_{n}": "no trunk: None and {} are both falsy, and fig_c9 draws nothing either way"
       for n in (5, 7)},
    **{f"plot.x_lr_curves__mutmut_{n}": "split() or split(' '): the labels' words are single-spaced"
       for n in (22, 28)},
    **{f"plot.x_fig_c9__mutmut_{n}": "the name of a merge without a style of its own: color() gives every name "
       "it does not know the colour of 'other'" for n in (22, 23)},
    **{f"lab.rundir.x_{function}__mutmut_{n}": "flush=True dropped: when the line leaves stdout's buffer, not what it "
       "says (parallel.exit_at_once flushes stdout before a process ends)"
       for function, numbers in (("check_same_data", (16, 18, 21)), ("resolve_auto", (65, 67, 72))) for n in numbers},
    "lab.rundir.x_resolve_auto__mutmut_40": "branch=None: check_changes tests branch for truth, None is False",
    "lab.rundir.x_load_start__mutmut_10": "tensors=None: load tests tensors for truth, None is False",
    **{f"lab.rundir.x_load_start__mutmut_{n}": "the tensors read at once (load's default) instead of as references: "
       "read_tensors then cuts the same shards from them, the same values; what differs is the memory (every "
       "process holds every full tensor for a moment), which FSDP's sharded read avoids" for n in (14, 29)},
    **{mutant: "true division of exact multiples: n_embd is a multiple of n_head and head_dim even (the model "
       "requires both for rotary), a float's bits a multiple of 8; the same numbers, as floats" for mutant in (
        "lab.plan.x_attention_bytes__mutmut_4", "lab.plan.x_attention_bytes__mutmut_42",
        "lab.plan.x_activation_dtype_bytes__mutmut_1")},
    "lab.plan.x_compiled_activation_bytes__mutmut_36": "weight_copies=None: activation_bytes tests it for truth, "
                                                       "None is False",
    "lab.shards.x_scan__mutmut_5": "the read buffer's size: the digest and the largest token do not depend on how "
                                   "a file is cut into reads",
    "predict.x_recommended_fits__mutmut_29": "str(k[1]) for str(k[0]): the recipe's runs are on streams (seed, "
                                             "seed) (streams.matching), so both name the seed",
    **{f"predict.x_optimal_cooldown__mutmut_{n}": "the coarse grid's size (Ns 12): 13 or scipy's 20 points per axis "
       "find a minimum within 1e-5 of an exhaustive search's once fmin polishes it (the landscape is flat there: "
       "neighbouring whole-step cooldowns 1e-6 apart); only the time changes" for n in (57, 65)},
    "predict.x_optimal_cooldown__mutmut_58": "finish=fmin dropped: fmin is scipy's brute's default finish",
    "predict.x_committed_runs__mutmut_10": "the recipe's second run for its first: every recipe run has the recipe's "
                                           "model, data and batch (RECIPE_SETUP), so either is `like`",
    "predict.x_committed_runs__mutmut_9": "FIT_SEEDS[:2] for [:1]: the first run is the same; it needs seed 1338's "
                                          "runs, which every caller then needs too (the same error, from matching)",
    **{f"predict.x_user_fits__mutmut_{n}": "'none found' is never shown: --fit names folders, find_run_dirs refuses "
       "one without runs, and load_runs notes every run it leaves out" for n in (14, 15)},
    "lab.runs.x_one_data__mutmut_8": "None for [] where no run's data is unknown: unknown is then only tested for "
                                      "truth, and both are false",
    "lab.runs.x_verdict__mutmut_25": "mean < 0 or <= 0 to name the better: a mean of exactly 0 is always within "
                                     "noise (0 <= half), never reaches this line",
}


def mutant_globs(target):
    """mutmut's names of the mutants of the target's functions: <module>.<function>__mutmut_<n>."""
    module = target.path.removesuffix(".py").replace("/", ".")
    return [f"{module}.{function}__mutmut_*" for function in target.functions]


def project(name, target):
    """out/mutation/<name>/: links to the code and tests, and mutmut's settings for this module alone."""
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    code = sorted(p.name for p in REPO.glob("*.py")) + ["lab", "bench"]
    for entry in code + list(LINKED):
        (folder / entry).symlink_to(REPO / entry)
    lines = ["[mutmut]", "source_paths =", *(f"    {entry}" for entry in code), f"only_mutate = {target.path}",
             "also_copy =", *(f"    {entry}" for entry in LINKED),
             "pytest_add_cli_args_test_selection =", *(f"    {test}" for test in target.tests),
             *(f"    --deselect={test}" for test in target.deselect),
             # (an empty value would be one empty pattern, which every line matches)
             *(["do_not_mutate_patterns ="] if target.unmutated else []), *(f"    {p}" for p in target.unmutated),
             "pytest_add_cli_args = -p no:cacheprovider -n 0",
             # forked from a server that has imported torch but run nothing: torch's thread pools are not fork-safe
             "process_isolation = forkserver", "use_git_change_detection = false"]
    (folder / "setup.cfg").write_text("\n".join(lines) + "\n")
    return folder


def statuses(folder, target):
    """{mutant: mutmut's status} of the target's functions, from the run in `folder`."""
    from mutmut.stats import status_by_exit_code
    meta = json.loads((folder / "mutants" / f"{target.path}.meta").read_text())
    globs = mutant_globs(target)
    return {mutant: status_by_exit_code[code] for mutant, code in meta["exit_code_by_key"].items()
            if any(fnmatch.fnmatch(mutant, glob) for glob in globs)}


def run_module(name, target, children, survivors=False):
    """mutmut run on the target's functions in its own folder; {mutant: status}, mutmut's output in run.log.
    survivors: only the last run's survivors (and any mutant it left unchecked) again, in its folder: its mutants,
    the tests copied afresh."""
    folder = OUT / name if survivors else project(name, target)
    mutants = [m for m, status in statuses(folder, target).items() if status not in KILLED and m not in EQUIVALENT
               ] if survivors else mutant_globs(target)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if mutants:  # none left to run again: `mutmut run` without names would run every mutant of the file
        with open(folder / "run.log", "a" if survivors else "w") as log:
            subprocess.run([MUTMUT, "run", f"--max-children={children}", *mutants],
                           cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    return statuses(folder, target)


def diff(name, mutant):
    return subprocess.run([MUTMUT, "show", mutant], cwd=OUT / name, capture_output=True,
                          text=True).stdout


def score(statuses):
    """{killed, non_equivalent, survivors: {mutant: status}, equivalent: [mutant]} of one module's run."""
    equivalent = sorted(m for m in statuses if m in EQUIVALENT)
    counted = {m: status for m, status in statuses.items() if m not in EQUIVALENT}
    return dict(killed=sum(status in KILLED for status in counted.values()), non_equivalent=len(counted),
                survivors={m: status for m, status in sorted(counted.items()) if status not in KILLED},
                equivalent=equivalent)


SETTINGS = dict(
    children=Setting(os.cpu_count() or 1, "mutants run at once", ">= 1"),
    list=Setting(False, "print the modules, functions and tests; run nothing"),
    survivors=Setting(False, "run only the last run's survivors and unchecked mutants again (after adding tests; the "
                             "code unchanged)"),
)


def main(argv):
    """The modules named on the command line (default: every one of TARGETS), then --key=value settings."""
    modules = [arg for arg in argv if not arg.startswith("-")]
    args = parse_args([arg for arg in argv if arg.startswith("-")], SETTINGS)
    for name in modules:
        if name not in TARGETS:
            close = difflib.get_close_matches(name, TARGETS, n=1)
            raise ConfigError(f"unknown module '{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                              + f"; expected some of {', '.join(TARGETS)}")
    for name in modules or TARGETS:
        target = TARGETS[name]
        if args["list"]:
            print(f"{name}: {target.path} {', '.join(target.functions)}; tests {', '.join(target.tests)}")
            continue
        started = time.perf_counter()
        result = score(run_module(name, target, args["children"], args["survivors"]))
        minutes = round((time.perf_counter() - started) / 60, 1)
        previous = OUT / f"{name}.json"
        if args["survivors"] and previous.is_file():  # the whole module's run keeps its time; this run adds its own
            result = {**json.loads(previous.read_text()), **result}
        result["survivors_minutes" if args["survivors"] else "minutes"] = minutes
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=1))
        (OUT / f"{name}.diff").write_text("".join(diff(name, mutant) for mutant, status in result["survivors"].items()
                                                  if status == "survived"))  # not "no tests": whole functions
        print(f"{name}: {result['killed']} / {result['non_equivalent']} killed "
              f"({result['killed'] / max(result['non_equivalent'], 1):.1%}), {len(result['equivalent'])} equivalent, "
              f"in {minutes} min; survivors (diffs in {OUT / name}.diff):", flush=True)
        for mutant, status in result["survivors"].items():
            print(f"  {mutant}: {status}", flush=True)


if __name__ == "__main__":
    run_script(main, sys.argv[1:])
