#!/usr/bin/env bash
# Runs inside LocalStack once it is ready: Strata never creates buckets.
set -euo pipefail
awslocal s3 mb s3://strata --region us-east-1
