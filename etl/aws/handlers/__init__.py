"""The Lambda entry points, one thin module per function (``Handler: <module>.handler`` in ``template.yml``).

This folder is zipped flat as the functions' code (docs/deploy.md §1); ``etl sim`` and the emulated pipeline
load the same files (``etl.package_data.handlers_dir``). The logic lives in ``etl.aws.states``.
"""
