# One Helm release of a local chart. Values merge in this order, later wins:
# the chart's values.yaml < values (in order) < the image.
# No wait and no atomic by default: the caller follows the rollout itself and can stop early,
# which Helm's own wait (run by the provider with no way to interrupt it) cannot.
resource "helm_release" "this" {
  name      = var.release_name
  namespace = var.namespace
  chart     = var.chart_path

  create_namespace = var.create_namespace
  atomic           = var.atomic
  wait             = var.wait
  timeout          = var.timeout
  max_history      = var.max_history
  cleanup_on_fail  = var.cleanup_on_fail

  disable_openapi_validation = !var.openapi_validation

  values = var.values

  set = concat(
    [
      { name = "image.repository", value = var.image_repository },
      { name = "image.tag", value = var.image_tag, type = "string" },
    ],
    var.image_digest == "" ? [] : [{ name = "image.digest", value = var.image_digest, type = "string" }],
  )
}
