"""Unit tests of the ground-floor modules: ari_agent.{seam,config,errors,log,metrics,yaml_source}."""
