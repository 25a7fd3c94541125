provider "helm" {
  kubernetes = {
    config_path    = var.kubeconfig_path
    config_context = var.kube_context == "" ? null : var.kube_context
  }
}

locals {
  chart_path = abspath("${path.module}/../.helm")
  # The URL the release answers on: base_url, else the environment values file's baseUrl.
  base_url = var.base_url != "" ? var.base_url : try(yamldecode(file("${local.chart_path}/values-${var.environment}.yaml")).baseUrl, "")
}

module "app" {
  source = "../modules/helm-release"

  release_name     = var.release_name
  namespace        = var.namespace
  chart_path       = local.chart_path
  environment      = var.environment
  image_repository = var.image_repository
  image_tag        = var.image_tag
  image_digest     = var.image_digest
  values_files     = var.values_files
  sensitive_values = var.sensitive_values
  timeout          = var.timeout

  # The root module's own inputs come last, so they win over the values files; an empty
  # base_url keeps the environment file's baseUrl.
  values = merge(var.values, { environment = var.environment }, var.base_url == "" ? {} : { baseUrl = var.base_url })
}
