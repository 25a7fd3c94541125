output "environment" {
  description = "The environment this state belongs to."
  value       = var.environment
}

output "namespace" {
  description = "Namespace of the environment's releases."
  value       = var.namespace
}

output "services" {
  description = "The inputs every service was last applied with: a run restricted to some services passes the others' back unchanged, so they are left exactly as they run. Marked sensitive only to keep pages of values off the terminal after each apply; it holds no secret (deploy reads it with terraform output -json)."
  value       = var.services
  sensitive   = true
}

output "releases" {
  description = "Revision and status of each service's Helm release."
  value       = { for name, m in module.service : name => { revision = m.revision, status = m.status } }
}
