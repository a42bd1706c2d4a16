# The report: reports/index.html (self-contained) and reports/README.md, with figures beside them,
# and reports/digest.json, which `pgbench compare` compares with the committed reference report
# (reports/reference/). All git-ignored: a run never changes the committed files.


rule report:
    input:
        f"{SUMMARY}/runs.parquet",
        f"{SUMMARY}/claims.parquet",
    output:
        f"{REPORTS}/index.html",
        f"{REPORTS}/README.md",
        f"{REPORTS}/digest.json",
    params:
        summary=lambda wildcards, input: os.path.dirname(input[0]),
        out=lambda wildcards, output: os.path.dirname(output[0]) or ".",
        configfile=report_configfile_arg(),
    message:
        "report {output[0]} and {output[1]}; log {log}"
    log:
        f"{LOGS}/report.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "pgbench report {params.summary} --out {params.out} {params.configfile} --force > {log} 2>&1"
