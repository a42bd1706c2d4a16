# The gradient-estimator study: bias and variance of each estimator at fixed policy parameters.


rule gradstudy:
    output:
        f"{RESULTS}/gradstudy/{{env}}/gradstudy.parquet",
        f"{RESULTS}/gradstudy/{{env}}/gradstudy_layers.parquet",
        f"{RESULTS}/gradstudy/{{env}}/gradstudy_pairs.parquet",
    params:
        args=gradstudy_args,
        out=lambda wildcards, output: os.path.dirname(output[0]),
    message:
        "gradient study on {wildcards.env}; log {log}"
    log:
        f"{LOGS}/gradstudy/{{env}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gradstudy/{{env}}.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=60,
    wildcard_constraints:
        env="[^/]+",
    shell:
        "pgbench gradstudy --env {wildcards.env} {params.args} --out {params.out} > {log} 2>&1"
