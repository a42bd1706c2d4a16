# pgbench: policy-gradient benchmark pipeline.
#   snakemake --cores 8                          the default suites -> reports/index.html
#   snakemake --cores 2 --configfile config/smoke.yaml   a CI-sized run
#   snakemake --profile workflow/profiles/slurm  the same on a Slurm cluster
# All logic lives in workflow/rules/common.smk; the rules only call the `pgbench` CLI.

from snakemake.utils import min_version

min_version("9.0")


# The default suites, unless a config is given (`--configfile` would otherwise be merged into
# them, key by key, instead of replacing them).
if not config:

    configfile: "config/config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/gradstudy.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_targets(),
    message:
        "done: the report is {input[2]} (and {input[3]})"
    default_target: True
