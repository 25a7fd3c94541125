# One Helm release of the local chart. Values merge in this order, later wins:
# chart defaults (values.yaml) < values-<environment>.yaml < values_files < values < image < sensitive_values.
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

  values = concat(
    [file("${var.chart_path}/values-${var.environment}.yaml")],
    [for f in var.values_files : file(f)],
    [yamlencode(var.values)],
  )

  set = concat(
    [
      { name = "image.repository", value = var.image_repository },
      { name = "image.tag", value = var.image_tag, type = "string" },
    ],
    var.image_digest == "" ? [] : [{ name = "image.digest", value = var.image_digest, type = "string" }],
  )

  set_sensitive = [for path, value in var.sensitive_values : { name = path, value = value, type = "string" }]
}
