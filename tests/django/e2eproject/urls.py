from django.http import HttpResponse
from django.urls import path


def write(request):
    """One small write, as an app's request makes (auto_e2e.py)."""
    from annotations.models import Document

    doc = Document.objects.create(name="request", text="x" * 100)
    return HttpResponse(str(doc.pk))


urlpatterns = [path("write", write)]
