variable "environment" {
  description = "DTAP environment (dev, test, staging, prod); each service has its own workspace, <environment>.<service>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.environment))
    error_message = "environment must be a DNS label, such as dev or staging."
  }
}

variable "namespace" {
  description = "Namespace of every release of the environment (deploy creates and labels it)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace)) && length(var.namespace) <= 63
    error_message = "namespace must be a DNS-1123 label of at most 63 characters."
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

variable "services" {
  description = "The services of the environment, by name (the release name): the image, and the values documents in the order they apply (environment, service, extra files, deploy's own). Secrets are never here: deploy writes them into a Secret the chart mounts by name."
  type = map(object({
    image_repository = string
    image_tag        = string
    image_digest     = optional(string, "")
    values           = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for name, _ in var.services : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name)) && length(name) <= 53])
    error_message = "every service name must be a DNS-1123 label of at most 53 characters (a Helm release name)."
  }
}

variable "helm_timeout" {
  description = "Seconds Helm may take to install or upgrade one release (without waiting for the pods: deploy follows the rollout)."
  type        = number
  default     = 120
}
