# One job trains every arm of a suite (each variant with its varied settings) on one env for a
# block of seeds, in one process (`pgbench train-job`): the runs share the Python/torch overhead,
# each giving the numbers it would give alone. Each finished run's directory appears atomically;
# a rerun skips the complete ones, so a killed job loses only its unfinished runs, and a job
# whose spec changed trains only the runs that changed or are new (--force replaces the runs of
# an arm whose config changed; pgbench never deletes a file it did not write). The spec is a
# file the workflow writes (common.smk); the job's log gets a progress line per finished run.


rule compile_engine:
    output:
        f"{RESULTS}/compiled-engine.ready",
    message:
        "compile the compiled engine's kernels; log {log}"
    log:
        f"{LOGS}/compile_engine.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pgbench compile > {log} 2>&1 && touch {output}"


rule train:
    input:
        unpack(train_inputs),
    output:
        f"{RESULTS}/runs/{{suite}}/{{env}}/block{{block}}.done",
    params:
        what=train_summary,
    message:
        "train {wildcards.suite} {wildcards.env} block {wildcards.block}: {params.what}; log {log}"
    log:
        f"{LOGS}/train/{{suite}}/{{env}}/block{{block}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{suite}}/{{env}}/block{{block}}.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=train_runtime,
    wildcard_constraints:
        suite="[^/]+",
        env="[^/]+",
        block=r"\d+",
    shell:
        "pgbench train-job --spec @{input.spec} --force > {log} 2>&1 && touch {output}"
