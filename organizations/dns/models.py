from django.db import models


class LocalDnsRecord(models.Model):
    """A record of the local DNS provider: the zone a quickstart serves itself (`manage.py run_local_dns`).

    This is the provider's own storage, like Cloudflare's database, not a projection.
    """

    name = models.CharField(max_length=253, unique=True, help_text="Fully qualified name, lowercase, no trailing dot.")
    record_type = models.CharField(max_length=10, default="CNAME")
    content = models.CharField(max_length=253)
    ttl = models.PositiveIntegerField(default=60)
    proxied = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "organizations"
        verbose_name = "local DNS record"

    def __str__(self) -> str:
        return f"{self.name} {self.record_type} {self.content}"
