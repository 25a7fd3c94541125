terraform {
  required_version = ">= 1.9, < 2.0"

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.1"
    }
  }

  # State lives in the target cluster: one Secret per workspace (<env>.<service>: one per
  # service of each environment), locked by a Lease. mage deploy passes the rest (config_path, config_context, namespace, secret_suffix)
  # with -backend-config, so every checkout and CI runner that targets the cluster shares it.
  # Another backend: see README.md ("Another backend").
  backend "kubernetes" {}
}
