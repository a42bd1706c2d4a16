# One job trains every arm of a suite (each variant with its varied settings) on one env for a
# block of seeds, in one process (`pgbench train-job`): the runs share the Python/torch overhead,
# each giving the numbers it would give alone. Each finished run's directory appears atomically;
# a rerun skips the complete ones (--skip-existing), so a killed job loses only its unfinished
# runs, and a job whose spec changed trains only the runs that changed or are new.


rule train:
    output:
        touch(f"{RESULTS}/runs/{{suite}}/{{env}}/block{{block}}.done"),
    params:
        args=train_args,
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
        "pgbench train-job {params.args} --skip-existing > {log} 2>&1"
