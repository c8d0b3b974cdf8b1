from django.conf import settings
from django.db import models


class Document(models.Model):
    name = models.CharField(max_length=200)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)


class Annotation(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    value = models.CharField(max_length=100)
    start = models.IntegerField()
    end = models.IntegerField()
    validated = models.BooleanField(default=False)
    last_modified = models.DateTimeField(auto_now=True)
