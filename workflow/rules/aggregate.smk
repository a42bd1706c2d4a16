# Many run directories -> tidy summary tables, then every claim's verdict.


rule aggregate:
    input:
        [train_marker(key) for key in TRAIN_JOBS],
        expand(f"{RESULTS}/gradstudy/{{env}}/gradstudy.parquet", env=GRADSTUDY_ENVS),
    output:
        f"{SUMMARY}/runs.parquet",
        f"{SUMMARY}/curves.parquet",
        f"{SUMMARY}/compute.parquet",
        f"{SUMMARY}/provenance.json",
    params:
        # the jobs' specs, not every run directory: a command line naming thousands of runs
        # would pass the kernel's 128 KiB limit on one argument (`bash -c "..."`)
        specs=("--specs " + " ".join(train_spec_path(key) for key in TRAIN_JOBS)) if TRAIN_JOBS else "",
        n_runs=len(all_run_dirs()),
        gradstudy=f"--gradstudy {RESULTS}/gradstudy" if GRADSTUDY_ENVS else "",
        # the planned jobs' files only: a results directory may keep files of jobs that a
        # changed config no longer has (other blocks of seeds, an older layout)
        benchmarks=" ".join(
            [f"{RESULTS}/benchmarks/train/{s}/{e}/block{b}.tsv" for s, e, b in TRAIN_JOBS]
            + [f"{RESULTS}/benchmarks/gradstudy/{env}.tsv" for env in GRADSTUDY_ENVS]),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    message:
        "aggregate {params.n_runs} runs into {params.out}; log {log}"
    log:
        f"{LOGS}/aggregate.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "pgbench aggregate {params.specs} --benchmarks {params.benchmarks} {params.gradstudy}"
        " --out {params.out} --force > {log} 2>&1"


rule claims:
    input:
        f"{SUMMARY}/runs.parquet",
    output:
        f"{SUMMARY}/claims.parquet",
    params:
        summary=lambda wildcards, input: os.path.dirname(input[0]),
    message:
        "claims of {params.summary}; log {log}"
    log:
        f"{LOGS}/claims.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "pgbench claims {params.summary} > {log} 2>&1"
