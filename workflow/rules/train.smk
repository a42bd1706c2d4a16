# One job trains one arm of a suite (a variant with its varied settings) on one env for a block of
# seeds, in one process: the seeds share the Python/torch overhead, each giving the numbers it
# would give alone. Each finished seed's run directory appears atomically; a rerun skips the
# complete ones (--skip-existing), so a killed job loses only its unfinished seeds.


rule train:
    output:
        touch(f"{RESULTS}/runs/{{suite}}/{{env}}/{{arm}}/block{{block}}.done"),
    params:
        args=train_args,
    log:
        f"{LOGS}/train/{{suite}}/{{env}}/{{arm}}/block{{block}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{suite}}/{{env}}/{{arm}}/block{{block}}.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=train_runtime,
    wildcard_constraints:
        suite="[^/]+",
        env="[^/]+",
        arm="[^/]+",
        block=r"\d+",
    shell:
        "pgbench train {params.args} --skip-existing > {log} 2>&1"
