"""The two studies as pipelines of stages: cardiac (with transfer) and HAD-Net."""
