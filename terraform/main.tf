provider "helm" {
  kubernetes = {
    config_path    = var.kubeconfig_path
    config_context = var.kube_context == "" ? null : var.kube_context
  }
}

# One release per service of the environment, all in the environment's namespace. The chart
# path is relative, so the state holds nothing of the checkout's location.
module "service" {
  source   = "../modules/helm-release"
  for_each = var.services

  release_name     = each.key
  namespace        = var.namespace
  chart_path       = "${path.module}/../.helm"
  image_repository = each.value.image_repository
  image_tag        = each.value.image_tag
  image_digest     = each.value.image_digest
  values           = each.value.values
  timeout          = var.helm_timeout

  # deploy creates the namespace itself, labelled with the environment it belongs to.
  create_namespace = false
  # deploy follows the rollout, fails fast and rolls back with the Helm SDK (see README.md).
  wait   = false
  atomic = false

  # dev and test skip Helm's client-side OpenAPI check, half a second of every upgrade: the
  # chart's manifests of every environment are checked by a strict server-side dry run in CI
  # (TestEveryEnvironmentPassesRestrictedPodSecurity), and the API server still checks types.
  # staging and prod keep it.
  openapi_validation = !contains(["dev", "test"], var.environment)
}

# Before the monorepo layout the one release was module.app; it is the api service now.
moved {
  from = module.app
  to   = module.service["api"]
}
