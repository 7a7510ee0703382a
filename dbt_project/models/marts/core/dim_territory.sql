select
    territory_id,
    territory_name,
    region,
    segment
from {{ ref('stg_reference__territories') }}
