"""The processes of the task queue, for taskiq's command line (REDIS_URL required):

taskiq worker api.task_worker:broker --workers 1 --no-configure-logging   # make worker; scale by replicas
taskiq scheduler api.task_worker:scheduler --no-configure-logging         # make scheduler; exactly one
"""

from api.settings import get_settings
from api.tasks import build_worker

broker, scheduler = build_worker(get_settings())
