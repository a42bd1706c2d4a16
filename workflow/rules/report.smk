# The report: reports/index.html (self-contained) and reports/README.md, with figures beside them.


rule report:
    input:
        f"{SUMMARY}/runs.parquet",
        f"{SUMMARY}/claims.parquet",
    output:
        f"{REPORTS}/index.html",
        f"{REPORTS}/README.md",
    params:
        summary=lambda wildcards, input: os.path.dirname(input[0]),
        out=lambda wildcards, output: os.path.dirname(output[0]) or ".",
    log:
        f"{LOGS}/report.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "pgbench report {params.summary} --out {params.out} > {log} 2>&1"
