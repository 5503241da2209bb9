"""The pipeline's steps (landing → raw → validate → transform → stage → load → archive/error → notify).

``steps`` holds each step once; ``etl run`` chains them in-process and the Lambda handlers call them one
state at a time, so local runs and the AWS state machine execute the same code.
"""
