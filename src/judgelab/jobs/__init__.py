"""Durable background jobs: evaluation jobs on DBOS workflows and queues."""
