# The build image of the Terraform and Ansible builds (build-image/Dockerfile): an ECR repository
# the deploy workflow pushes it to, and the image both CodeBuild projects run unless
# var.codebuild_image names another. Tags are immutable and content-addressed (the digest of the
# files under build-image/, or var.build_image_tag), so a project never runs an image that
# changed under its tag.

locals {
  build_image_dir   = "${path.module}/../../../build-image"
  build_image_files = ["Dockerfile", "aws-provider.sha256", "requirements.txt"]
  # .github/scripts/build-image-tag.sh computes the same tag for the deploy workflow.
  build_image_content_tag = substr(sha256(join("\n", [
    for f in local.build_image_files : filesha256("${local.build_image_dir}/${f}")
  ])), 0, 16)
  build_image_tag = coalesce(var.build_image_tag, local.build_image_content_tag)
  codebuild_image = var.codebuild_image != null ? var.codebuild_image : "${aws_ecr_repository.build_image[0].repository_url}:${local.build_image_tag}"
}

resource "aws_ecr_repository" "build_image" {
  count                = var.codebuild_image == null ? 1 : 0
  name                 = "${var.name}-build"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.state_bucket_force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = local.tags
}

# Older images are kept for a while (a running build may still use the previous one).
resource "aws_ecr_lifecycle_policy" "build_image" {
  count      = length(aws_ecr_repository.build_image)
  repository = aws_ecr_repository.build_image[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the ${var.build_image_keep} most recent images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.build_image_keep }
      action       = { type = "expire" }
    }]
  })
}

# The projects pull with CodeBuild's credentials (image_pull_credentials_type = "CODEBUILD"):
# the repository admits the CodeBuild service for this fleet's two projects only.
resource "aws_ecr_repository_policy" "build_image" {
  count      = length(aws_ecr_repository.build_image)
  repository = aws_ecr_repository.build_image[0].name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CodeBuildPull"
      Effect    = "Allow"
      Principal = { Service = "codebuild.amazonaws.com" }
      Action    = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike = { "aws:SourceArn" = [
          "arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project/${local.terraform_project}",
          "arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project/${local.ansible_project}",
        ] }
      }
    }]
  })
}
