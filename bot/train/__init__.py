"""The training file and the train stage (job, events, deploy, distilled eval, report)."""
