variable "environment" {
  description = "DTAP environment (dev, test, staging, prod): the chart's values-<environment>.yaml. Equal to the workspace name."
  type        = string
}

variable "release_name" {
  description = "Helm release name (DNS-1123, at most 53 characters)."
  type        = string
}

variable "namespace" {
  description = "Namespace to install into; created when missing."
  type        = string
}

variable "image_repository" {
  description = "Image repository with registry host, for example localhost:5001/api."
  type        = string
}

variable "image_tag" {
  description = "Image tag."
  type        = string
}

variable "image_digest" {
  description = "Image digest (sha256:...) from the push; pods then run the image by digest."
  type        = string
  default     = ""
}

variable "base_url" {
  description = "Public base URL of the service, for example https://api.staging.example.com. The Ingress or HTTPRoute host comes from it. Empty: no public URL."
  type        = string
  default     = ""

  validation {
    condition     = var.base_url == "" || can(regex("^https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?/?$", var.base_url))
    error_message = "base_url must be empty or http(s)://host[:port], for example https://api.staging.example.com."
  }
}

variable "kubeconfig_path" {
  description = "Path of the kubeconfig file of the target cluster."
  type        = string
}

variable "kube_context" {
  description = "Context in the kubeconfig; empty uses its current context."
  type        = string
  default     = ""
}

variable "values_files" {
  description = "Extra values files (absolute paths), applied after the environment's values file."
  type        = list(string)
  default     = []
}

variable "values" {
  description = "Extra chart values, applied after the values files."
  type        = any
  default     = {}
}

variable "sensitive_values" {
  description = "Secret chart values by path (for example \"secret.data.db-password\"). Pass them with TF_VAR_sensitive_values, never in a file in git."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "timeout" {
  description = "Seconds to wait for the rollout before the release is rolled back."
  type        = number
  default     = 300
}
