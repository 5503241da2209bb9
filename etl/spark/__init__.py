"""The PySpark transform engine used by the Glue job; the only package that imports pyspark."""
