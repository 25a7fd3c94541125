terraform {
  required_version = ">= 1.9, < 2.0"

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.1"
    }
  }

  # State is local by default, one state per workspace (= environment) under
  # terraform.tfstate.d/<env>/, gitignored. For a remote backend, see README.md ("State").
  backend "local" {}
}
