output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.this.name
}

output "namespace" {
  description = "Namespace of the Helm release."
  value       = helm_release.this.namespace
}

output "revision" {
  description = "Revision of the Helm release."
  value       = helm_release.this.metadata.revision
}

output "status" {
  description = "Status of the Helm release (deployed, failed, ...)."
  value       = helm_release.this.status
}

output "chart_version" {
  description = "Version of the deployed chart."
  value       = helm_release.this.metadata.version
}
