output "url" {
  description = "Public URL of the service (base_url, else the environment's baseUrl), or how to reach it when it has none."
  value       = local.base_url != "" ? local.base_url : "none: kubectl -n ${module.app.namespace} port-forward svc/${module.app.release_name} 8080:http"
}

output "namespace" {
  description = "Namespace of the release."
  value       = module.app.namespace
}

output "release" {
  description = "Name of the Helm release."
  value       = module.app.release_name
}

output "revision" {
  description = "Revision of the Helm release."
  value       = module.app.revision
}

output "status" {
  description = "Status of the Helm release."
  value       = module.app.status
}
